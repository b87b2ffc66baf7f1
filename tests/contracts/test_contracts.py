"""The contracts and the gateway config are checked by the real tools: `buf lint` and
`envoy --mode validate` on the config rendered from the descriptor set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from imgtag_dev import codegen, gateway
from imgtag_dev.paths import DESCRIPTOR_SET, REPO_ROOT, venv_bin


def test_buf_lint_is_clean() -> None:
    codegen.copy_third_party_protos()
    result = subprocess.run([venv_bin("buf"), "lint"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_buf_build_covers_every_service() -> None:
    out = REPO_ROOT / "build" / "buf-image.binpb"
    subprocess.run([venv_bin("buf"), "build", "-o", str(out)], cwd=REPO_ROOT, check=True)
    image = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    services = {f"{f.package}.{s.name}" for f in image.file for s in f.service}
    assert set(gateway.PUBLIC_SERVICES) <= services


@pytest.mark.parametrize(
    "options",
    [{}, {"trusted_hops": 2, "cors_origins": ["http://localhost:5173", "https://photos.example"]}],
    ids=["defaults", "behind-proxies-with-cors-origins"],
)
def test_envoy_validates_rendered_gateway_config(tmp_path: Path, options: dict) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(
        gateway.render(
            listen_port=18080,
            admin_port=19901,
            upstreams=[
                gateway.Upstream(n, "127.0.0.1", 50051 + i)
                for i, n in enumerate(sorted(set(gateway.PUBLIC_SERVICES.values())))
            ],
            access_log=str(tmp_path / "access.log"),
            **options,
        )
    )
    result = subprocess.run(
        [venv_bin("envoy"), "--mode", "validate", "-c", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK" in result.stdout + result.stderr


def test_gateway_routes_only_public_methods() -> None:
    routes = {r.path for r in gateway.public_routes(DESCRIPTOR_SET)}
    assert "/imgtag.catalog.v1.CatalogService/UploadAsset" in routes
    assert "/imgtag.catalog.v1.CatalogService/ListAssets" in routes
    # Internal service-to-service methods have no http rule and therefore no gateway route.
    assert "/imgtag.storage.v1.StorageService/WriteObject" not in routes
    assert "/imgtag.storage.v1.StorageService/ReadObject" not in routes
    streaming = {r.path: r.timeout for r in gateway.public_routes(DESCRIPTOR_SET)}
    assert streaming["/imgtag.catalog.v1.CatalogService/UploadAsset"] == "0s"
    assert streaming["/imgtag.catalog.v1.CatalogService/GetAsset"] == gateway.UNARY_TIMEOUT


def test_python_code_is_ruff_clean_and_formatted() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([venv_bin("ruff"), *args], cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_rpc_has_an_access_rule_and_internal_ones_have_no_route() -> None:
    from imgtag.api.v1 import access_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    from google.api import annotations_pb2

    for file in fds.file:
        if not file.package.startswith("imgtag."):
            continue
        for service in file.service:
            for method in service.method:
                where = f"{file.package}.{service.name}.{method.name}"
                assert method.options.HasExtension(access_pb2.access), f"{where} has no access rule"
                audience = method.options.Extensions[access_pb2.access].audience
                assert audience != access_pb2.AccessRule.AUDIENCE_UNSPECIFIED, where
                routed = method.options.HasExtension(annotations_pb2.http)
                assert routed != (audience == access_pb2.AccessRule.INTERNAL), f"{where}: internal iff no route"


def test_the_access_document_matches_the_contracts() -> None:
    from imgtag_dev import access_doc

    assert access_doc.ACCESS_DOC.read_text() == access_doc.render(), "run: .venv/bin/imgtag access-doc"
