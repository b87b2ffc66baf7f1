"""Migration 0002 on a database written by 0001: the bootstrapped endpoint keeps its UUID (now
text) as its id, its replicas still point at it, a local endpoint's root becomes root_path, and
pgqueuer's tables are there."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command

from imgtag_common.db import alembic_config
from imgtag_storage.server import MIGRATIONS

pytestmark = pytest.mark.integration


def test_0002_keeps_existing_endpoint_ids_and_replicas(stack) -> None:
    database = "imgtag_storage_migration_" + uuid.uuid4().hex[:8]
    stack.postgres.query(f'CREATE DATABASE "{database}"')
    config = alembic_config(MIGRATIONS, stack.postgres.url(database))
    asyncio.run(asyncio.to_thread(command.upgrade, config, "0001"))
    s3_id, local_id = uuid.uuid4(), uuid.uuid4()
    stack.postgres.query(
        "INSERT INTO endpoints (id, display_name, kind, role, config, is_default_upload) VALUES "
        f"('{s3_id}', 'Local S3', 's3', 'primary', "
        '\'{"endpoint_url": "http://127.0.0.1:1", "bucket": "imgtag", "access_key_id": "a", '
        '"secret_access_key": "plain"}\', true), '
        f"('{local_id}', 'Disk', 'local', 'backup', '{{\"root\": \"/srv/photos\"}}', false);"
        "INSERT INTO objects (key, size_bytes, sha256, content_type) VALUES ('originals/a', 1, 'x', 'image/png');"
        f"INSERT INTO replicas (object_key, endpoint_id, state) VALUES ('originals/a', '{s3_id}', 'verified');",
        database=database,
    )
    asyncio.run(asyncio.to_thread(command.upgrade, config, "head"))
    rows = stack.postgres.query("SELECT id, config->>'root_path' FROM endpoints ORDER BY kind DESC", database=database)
    assert rows.splitlines() == [f"{s3_id}|", f"{local_id}|/srv/photos"]
    assert stack.postgres.query("SELECT endpoint_id, state FROM replicas", database=database) == f"{s3_id}|verified"
    assert stack.postgres.query("SELECT state FROM objects", database=database) == "stored"
    assert stack.postgres.query("SELECT count(*) FROM pgqueuer", database=database) == "0"
