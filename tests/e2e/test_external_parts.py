"""Each embedded part can be replaced by an external one through settings: a second stack that
uses the session's PostgreSQL and S3 as "external" servers starts neither itself."""

from __future__ import annotations

import hashlib
import shutil

import httpx
import pytest

from imgtag_dev.stack import running
from imgtag_dev.testing import ADMIN_PASSWORD, login, new_data_dir, stack_settings_for_tests, unique_png

pytestmark = pytest.mark.e2e


def test_stack_runs_on_external_postgres_and_s3(stack) -> None:
    data_dir = new_data_dir()
    external = stack_settings_for_tests(data_dir).model_copy(
        update={
            "external_database_url": stack.postgres.server_url,
            "external_s3_endpoint": stack.s3.endpoint_url,
            "external_s3_access_key": stack.s3.credentials.access_key,
            "external_s3_secret_key": stack.s3.credentials.secret_key,
        }
    )
    # The same storage database: endpoint secrets are sealed with the first stack's key.
    data_dir.joinpath("storage-secrets-key").write_bytes(
        stack.settings.data_dir.joinpath("storage-secrets-key").read_bytes()
    )
    data_dir.joinpath("storage-secrets-key").chmod(0o600)
    try:
        with running(external) as second:
            assert second.postgres is None and second.s3 is None
            data = unique_png(17, 11)
            # The same auth database: the same admin signs in through the second gateway.
            admin = login(second.gateway_url, "admin", ADMIN_PASSWORD)
            with httpx.Client(base_url=second.gateway_url, timeout=30, headers=admin.headers) as http:
                asset = http.post(
                    "/v1/assets:upload",
                    params={"filename": "external.png"},
                    content=data,
                    headers={"content-type": "image/png"},
                ).json()
                assert asset["width"] == 17
                body = http.get(f"/v1/{asset['name']}/content").content
            assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
        # The same database and bucket, so the first stack sees the asset too.
        admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
        assert (
            httpx.get(f"{stack.gateway_url}/v1/{asset['name']}", headers=admin.headers).json()["sha256"]
            == asset["sha256"]
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
