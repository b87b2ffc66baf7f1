"""Container images: every Dockerfile passes hadolint, builds in stages from pinned bases and runs
as a non-root user; the gateway config baked into the image (and its Kubernetes ConfigMap copy)
passes `envoy --mode validate`; the ports and names the images and manifests use are the
services' own. No Docker engine runs here, so the images themselves are not built by the tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from imgtag_auth.settings import AuthSettings
from imgtag_catalog.settings import CatalogSettings
from imgtag_dev import deploy
from imgtag_dev.paths import DESCRIPTOR_SET, REPO_ROOT, venv_bin
from imgtag_inference.settings import InferenceSettings
from imgtag_storage.settings import StorageSettings

SERVICES = {
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "storage": StorageSettings,
    "inference": InferenceSettings,
}
DOCKERFILES = {
    **{name: REPO_ROOT / "services" / name / "Dockerfile" for name in SERVICES},
    "gateway": REPO_ROOT / "gateway" / "Dockerfile",
    "web": REPO_ROOT / "web" / "Dockerfile",
    "triton": REPO_ROOT / "deploy" / "triton" / "Dockerfile",
}


def stages(dockerfile: Path) -> list[str]:
    """The base image of each stage, with ARG defaults substituted."""
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], m) for m in re.findall(r"^FROM (\S+)", text, re.M)]


def test_hadolint_passes_every_dockerfile() -> None:
    result = subprocess.run(
        [venv_bin("hadolint"), "--failure-threshold", "info", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_bases_are_pinned_to_exact_versions(name: str) -> None:
    for image in stages(DOCKERFILES[name]):
        _, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
        # An exact release, not a moving major/minor tag: at least major.minor.patch, a
        # MinIO-style RELEASE stamp, NGC's yy.mm, or a digest.
        assert re.search(r"\d+\.\d+\.\d+|RELEASE\.|^\d\d\.\d\d-|@sha256:", tag), f"{name}: {image}"


@pytest.mark.parametrize("name", sorted(set(DOCKERFILES) - {"triton"}))
def test_images_build_in_stages_and_run_unprivileged(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    assert len(stages(DOCKERFILES[name])) >= 2, "multi-stage: build tools stay out of the final image"
    final = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and not users[-1].startswith(("0", "root")), f"{name} runs as root"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_images_generate_code_in_the_build_and_listen_on_the_services_port(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    assert "imgtag gen" in text
    port = SERVICES[name].model_fields["port"].default
    assert deploy.SERVICE_PORTS[name] == port
    assert f"EXPOSE {port}" in text
    assert f"IMGTAG_{name.upper()}_HOST=0.0.0.0" in text
    assert f'ENTRYPOINT ["python", "-m", "imgtag_{name}"]' in text


def test_generated_code_never_enters_a_build_context() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for generated in ("libs/imgtag_protos/src/imgtag", "gateway/api.pb", "web/dist", "web/node_modules", "**/.venv"):
        assert generated in ignored


def test_deployment_names_agree_with_the_auth_settings() -> None:
    fields = AuthSettings.model_fields
    assert (deploy.JWT_ISSUER, deploy.JWT_AUDIENCE) == (fields["issuer"].default, fields["audience"].default)


def validate(config: str, tmp_path: Path) -> None:
    # The image keeps the descriptor at deploy.DESCRIPTOR_IN_IMAGE; here it is the checkout's.
    path = tmp_path / "envoy.yaml"
    path.write_text(config.replace(deploy.DESCRIPTOR_IN_IMAGE, str(DESCRIPTOR_SET)))
    result = subprocess.run([venv_bin("envoy"), "--mode", "validate", "-c", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(
    "options",
    [{}, {"trusted_hops": 1, "cors_origins": ["https://photos.example"]}],
    ids=["image-default", "behind-ingress-with-cdn-origin"],
)
def test_envoy_validates_the_gateway_config_baked_into_the_image(tmp_path: Path, options: dict) -> None:
    config = deploy.gateway_config(**options)
    validate(config, tmp_path)
    assert f"proto_descriptor: {deploy.DESCRIPTOR_IN_IMAGE}" in config
    for name, port in deploy.SERVICE_PORTS.items():
        assert f"address: {name}, port_value: {port}" in config
    # The SPA comes from the web bundle's server, not from files on the gateway.
    assert f"cluster: {deploy.WEB_SERVICE}" in config and "filename:" not in config
    if options:
        assert "allow_credentials: true" in config and '- exact: "https://photos.example"' in config
    else:
        assert "allow_credentials" not in config


def test_the_kubernetes_configmap_copy_is_current_and_valid(tmp_path: Path) -> None:
    expected = deploy.gateway_config(trusted_hops=deploy.K8S_TRUSTED_HOPS)
    regenerate = "imgtag render-gateway --for-deployment --trusted-hops 1 --out deploy/k8s/base/gateway/envoy.yaml"
    assert deploy.K8S_GATEWAY_CONFIG.read_text() == expected, f"run: .venv/bin/{regenerate}"
    validate(expected, tmp_path)


def test_gateway_image_validates_its_config_at_build_time() -> None:
    text = DOCKERFILES["gateway"].read_text()
    assert '"--mode", "validate"' in text
    assert "render-gateway --for-deployment" in text
    assert f"/out/api.pb {deploy.DESCRIPTOR_IN_IMAGE}" in text
