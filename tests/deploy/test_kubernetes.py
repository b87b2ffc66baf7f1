"""deploy/k8s: every overlay renders with kustomize (kubectl's), every object validates against
the Kubernetes schemas (kubernetes-validate, strict), and the rendered objects have the
properties the deployment promises: gRPC probes on the standard health service, requests and
limits, a hardened securityContext, a drain that fits the termination grace, GPU scheduling,
NetworkPolicies, budgets, and no secret values."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from imgtag_common.settings import ServiceSettings
from imgtag_dev import deploy
from imgtag_dev.paths import REPO_ROOT, venv_bin

from .conftest import SETTINGS, unknown_settings

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
SERVICES = {name: port for name, port in deploy.SERVICE_PORTS.items()}
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@cache
def render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [venv_bin("kubectl"), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[dict, ...], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_the_overlays_are_cpu_and_gpu() -> None:
    assert {"cpu", "gpu"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    version = kubernetes_validate.latest_version()
    for doc in render(overlay):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {list(error.path)}")
        assert doc["metadata"].get("namespace", "imgtag") == "imgtag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_a_named_grpc_port_and_its_own_account(overlay: str) -> None:
    docs = render(overlay)
    for name, port in SERVICES.items():
        service = find(docs, "Service", name)
        assert service["spec"]["ports"] == [
            {"name": "grpc", "port": port, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c"}
        ]
        # Headless, so clients see every replica and balance over them.
        assert service["spec"]["clusterIP"] == "None"
        deployment = find(docs, "Deployment", name)
        spec = pod_spec(deployment)
        assert spec["serviceAccountName"] == name
        assert find(docs, "ServiceAccount", name)["automountServiceAccountToken"] is False
        container = spec["containers"][0]
        assert {"name": "grpc", "containerPort": port} in container["ports"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_are_probed_over_grpc_on_the_standard_health_service(overlay: str) -> None:
    docs = render(overlay)
    for name, port in SERVICES.items():
        container = pod_spec(find(docs, "Deployment", name))["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            # No `service` field: the server-wide status ("") that the kit's health servicer sets.
            assert container[probe]["grpc"] == {"port": port}, f"{name} {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_a_hardened_security_context(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] not in WORKLOADS:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        mounts_tmp = True
        for container in containers(doc):
            what = f"{where}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, what
            assert security["readOnlyRootFilesystem"] is True, what
            assert security["capabilities"] == {"drop": ["ALL"]}, what
            assert "privileged" not in security, what
            mounts_tmp &= any(m["mountPath"] in ("/tmp", "/models") for m in container.get("volumeMounts", []))
        assert mounts_tmp, f"{where}: a writable /tmp under the read-only root"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_covers_the_services_drain(overlay: str) -> None:
    docs = render(overlay)
    for name in SERVICES:
        spec = pod_spec(find(docs, "Deployment", name))
        container = spec["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        grace = float(env[f"IMGTAG_{name.upper()}_SHUTDOWN_GRACE_S"])
        assert grace == ServiceSettings.model_fields["shutdown_grace_s"].default
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        # After preStop, RPCs in flight get `grace`, then the job queue gets `grace` again.
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + 2 * grace + 5, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_pass_only_settings_the_services_read(overlay: str) -> None:
    docs = render(overlay)
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        for container in containers(doc):
            names = [e["name"] for e in container.get("env", [])]
            assert not unknown_settings(names), f"{doc['metadata']['name']}/{container['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_in_production_mode_with_every_secret_from_the_secret(overlay: str) -> None:
    docs = render(overlay)
    values = {
        "postgres-password": "p" * 64,
        "service-secret": "s" * 64,
        "storage-secrets-key": "k" * 64,
        "inference-secrets-key": "i" * 64,
    }
    for name in SERVICES:
        env = {}
        for item in pod_spec(find(docs, "Deployment", name))["containers"][0]["env"]:
            if "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "imgtag"
                env[item["name"]] = values.get(ref["key"], "-----BEGIN PRIVATE KEY-----")
            else:
                env[item["name"]] = item["value"].replace("$(POSTGRES_PASSWORD)", values["postgres-password"])
        assert env[f"IMGTAG_{name.upper()}_ENVIRONMENT"] == "production"
        prefix = f"IMGTAG_{name.upper()}_"
        fields = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
        fields = {k: v for k, v in fields.items() if k in SETTINGS[name.upper()].model_fields}
        # Production refuses development defaults: constructing the settings proves none is left.
        settings = SETTINGS[name.upper()](**fields)
        assert settings.service_secret.get_secret_value() == values["service-secret"]


def test_no_secret_values_are_committed() -> None:
    for overlay in OVERLAYS:
        for doc in render(overlay):
            assert doc["kind"] != "Secret", f"{doc['metadata']['name']} carries values"
            for key, value in (doc.get("data") or {}).items():
                assert "PRIVATE KEY" not in value and "password" not in key.lower()
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    for path in tracked.split():
        text = (REPO_ROOT / path).read_text(errors="replace") if (REPO_ROOT / path).is_file() else ""
        assert "BEGIN PRIVATE KEY" not in text.replace("'BEGIN PRIVATE KEY'", ""), path
    assert "secretGenerator" not in (K8S / "base" / "kustomization.yaml").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside_and_each_service_reaches_what_it_needs(overlay: str) -> None:
    docs = render(overlay)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    def selected(policy: dict) -> str:
        return policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name", "*")

    open_to_all = [
        selected(p) for p in policies.values() for rule in p["spec"].get("ingress", []) if "from" not in rule
    ]
    assert open_to_all == ["gateway"]

    def reaches(source: str) -> set[str]:
        targets = set()
        for policy in policies.values():
            if selected(policy) != source:
                continue
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    targets.add(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name"))
        return targets - {None}

    def admits(target: str) -> set[str]:
        sources = set()
        for policy in policies.values():
            if selected(policy) == target:
                for rule in policy["spec"].get("ingress", []):
                    sources |= {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule.get("from", [])}
        return sources

    assert reaches("gateway") == {*SERVICES, "web"}
    assert reaches("catalog") == {"auth", "storage", "inference", "postgres"}
    assert reaches("storage") == {"auth", "postgres", "minio"}
    assert reaches("auth") == {"postgres"}
    assert reaches("inference") - {"triton", "triton-vlm"} == {"auth", "storage", "postgres"}
    assert reaches("web") == set()
    assert admits("postgres") == {"auth", "catalog", "storage", "inference", "migrate"}
    assert admits("minio") == {"storage", "minio"}
    assert admits("catalog") == {"gateway"}
    # Every pod of the namespace is covered by a policy of its own (besides the default deny).
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            label = doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
            assert label in {selected(p) for p in policies.values()}, label


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_cover_every_replicated_component(overlay: str) -> None:
    docs = render(overlay)
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: d["spec"]
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    for name in (*SERVICES, "gateway", "web", "minio"):
        assert name in budgets, name
    assert budgets["minio"] == {"maxUnavailable": 1, "selector": budgets["minio"]["selector"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_data_layer_postgres_with_a_volume_minio_distributed_and_migrations_first(overlay: str) -> None:
    docs = render(overlay)
    postgres = find(docs, "StatefulSet", "postgres")
    assert "pgvector" in pod_spec(postgres)["containers"][0]["image"]
    assert postgres["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    minio = find(docs, "StatefulSet", "minio")
    assert minio["spec"]["replicas"] == 4 and minio["spec"]["podManagementPolicy"] == "Parallel"
    args = pod_spec(minio)["containers"][0]["args"]
    assert any("minio-{0...3}" in a for a in args), "every pod lists the four drives: one erasure set"
    job = find(docs, "Job", "migrate")
    assert {c["command"][2] for c in pod_spec(job)["containers"]} == {f"imgtag_{s}.migrate" for s in SERVICES}
    for name in SERVICES:
        spec = pod_spec(find(docs, "Deployment", name))
        assert spec["initContainers"][0]["command"][:4] == ["python", "-m", f"imgtag_{name}.migrate", "--wait"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env[f"IMGTAG_{name.upper()}_MIGRATE_ON_START"] == "false"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_config_comes_from_a_configmap_and_an_ingress_with_tls_fronts_it(overlay: str) -> None:
    docs = render(overlay)
    gateway = pod_spec(find(docs, "Deployment", "gateway"))
    config_volume = next(v for v in gateway["volumes"] if v["name"] == "config")
    configmap = find(docs, "ConfigMap", config_volume["configMap"]["name"])
    assert configmap["data"]["envoy.yaml"] == deploy.K8S_GATEWAY_CONFIG.read_text()
    assert find(docs, "Service", "gateway")["spec"].get("type", "ClusterIP") == "ClusterIP"
    ingress = find(docs, "Ingress", "imgtag")
    assert ingress["spec"]["tls"][0]["secretName"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "gateway"
    # Nothing else is exposed.
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Ingress"] == ["imgtag"]
    assert all(d["spec"].get("type", "ClusterIP") == "ClusterIP" for d in docs if d["kind"] == "Service")


def inference_env(docs: tuple[dict, ...]) -> dict[str, str]:
    container = pod_spec(find(docs, "Deployment", "inference"))["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_cpu_overlay_runs_the_embedded_runtime_and_schedules_no_gpu() -> None:
    docs = render("cpu")
    assert "IMGTAG_INFERENCE_TRITON_URL" not in inference_env(docs)
    assert not [d for d in docs if d["metadata"]["name"].startswith("triton")]
    assert "nvidia.com/gpu" not in yaml.safe_dump(list(docs))
    hpa = find(docs, "HorizontalPodAutoscaler", "inference")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "inference"


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o.startswith("gpu")])
def test_gpu_overlays_put_triton_on_gpu_nodes_and_point_inference_at_it(overlay: str) -> None:
    docs = render(overlay)
    assert inference_env(docs)["IMGTAG_INFERENCE_TRITON_URL"] == "triton:8001"
    assert find(docs, "HorizontalPodAutoscaler", "inference")["spec"]["maxReplicas"] > 1
    tritons = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("triton")]
    assert tritons
    for triton in tritons:
        spec = pod_spec(triton)
        assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        server = spec["containers"][0]
        assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert "--model-repository=/models" in server["args"]
        assert any(m["mountPath"].startswith("/models") for m in server["volumeMounts"])
    triton = pod_spec(find(docs, "Deployment", "triton"))
    assert triton["initContainers"][0]["command"][1] == "/opt/imgtag/triton/fill_repository.py"
    loaded = {a.removeprefix("--load-model=") for a in triton["containers"][0]["args"] if a.startswith("--load-model=")}
    on_disk = {p.parent.name for p in (REPO_ROOT / "deploy" / "triton").glob("*/config.pbtxt")}
    assert loaded == on_disk - {"vlm-captioner"}
    assert find(docs, "PersistentVolumeClaim", "triton-models")


def test_the_secret_script_creates_every_key_the_manifests_reference(tmp_path: Path) -> None:
    referenced = set()
    for overlay in OVERLAYS:
        for doc in render(overlay):
            if doc["kind"] in WORKLOADS:
                for container in containers(doc):
                    for item in container.get("env", []):
                        ref = item.get("valueFrom", {}).get("secretKeyRef")
                        if ref:
                            referenced.add((ref["key"], ref.get("optional", False)))
    result = subprocess.run(
        ["bash", str(K8S / "make-secrets.sh"), "--dry-run=client", "-o", "yaml"],
        env={"KUBECTL": venv_bin("kubectl"), "PATH": "/usr/bin:/bin", "IMGTAG_ADMIN_PASSWORD": "a" * 12},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert {key for key, _ in referenced} == set(secret["data"])
    assert {key for key, optional in referenced if optional} == {"admin-password"}
