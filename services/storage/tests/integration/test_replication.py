"""Multi-endpoint storage against real servers: two SeaweedFS instances (primary and backup) and a
local directory, a storage service process of its own (see conftest.py), real PostgreSQL.

Replication survives a backup that goes away mid-sync and a kill -9 of the storage service;
reads fall over to the backup when the primary stops; a scrub finds corrupt and missing replicas
and repairs them; deletes reach every replica; endpoint mistakes are clear errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from imgtag.storage.v1 import storage_pb2
from imgtag_dev.processes import free_port

from .conftest import (
    expect_rpc_error,
    minio_for,
    read,
    replica_states,
    wait_for,
    write,
    write_many,
)

pytestmark = pytest.mark.integration

PRIMARY = "primary-s3"
BACKUP = "seaweed-backup"
DISK = "disk-backup"


def _s3_endpoint(server, bucket: str, *, secret: str | None = None, **fields) -> storage_pb2.Endpoint:
    return storage_pb2.Endpoint(
        display_name=fields.pop("display_name", "Seaweed backup"),
        role=fields.pop("role", storage_pb2.Endpoint.BACKUP),
        s3=storage_pb2.S3Config(
            endpoint_url=fields.pop("endpoint_url", server.endpoint_url),
            bucket=bucket,
            access_key_id=server.credentials.access_key,
            secret_access_key=secret if secret is not None else server.credentials.secret_key,
            force_path_style=True,
        ),
        **fields,
    )


@pytest.fixture
async def backups(rig, rig_admin) -> None:
    """The backup bucket and the local directory as enabled BACKUP endpoints."""
    existing = {e.name for e in (await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest())).endpoints}
    if f"endpoints/{BACKUP}" not in existing:
        await rig_admin.CreateEndpoint(
            storage_pb2.CreateEndpointRequest(endpoint=_s3_endpoint(rig.backup, "backup"), endpoint_id=BACKUP)
        )
    if f"endpoints/{DISK}" not in existing:
        await rig_admin.CreateEndpoint(
            storage_pb2.CreateEndpointRequest(
                endpoint=storage_pb2.Endpoint(
                    display_name="Disk backup",
                    role=storage_pb2.Endpoint.BACKUP,
                    local=storage_pb2.LocalConfig(root_path=str(rig.local_dir)),
                    read_priority=200,
                    read_weight=0,
                ),
                endpoint_id=DISK,
            )
        )


def _all_verified(rig, prefix: str, count: int, endpoints=(BACKUP, DISK)) -> bool:
    return all(replica_states(rig, prefix, e).get("verified") == count for e in endpoints)


def _backup_keys(rig, prefix: str) -> dict[str, str]:
    client = minio_for(rig.backup)
    return {
        o.object_name: hashlib.sha256(client.get_object("backup", o.object_name).read()).hexdigest()
        for o in client.list_objects("backup", prefix=prefix + "/", recursive=True)
    }


def _restart(server) -> None:
    server.start(server.data_dir.parent / "seaweedfs.log")


# ---------------------------------------------------------------------------- endpoints


async def test_endpoint_defaults_ids_and_sealed_secrets(rig, rig_admin, backups) -> None:
    backup = await rig_admin.GetEndpoint(storage_pb2.GetEndpointRequest(name=f"endpoints/{BACKUP}"))
    # Created without enabled/read_priority/read_weight: the documented defaults, not zeros.
    assert backup.enabled and backup.read_priority == 100 and backup.read_weight == 1
    assert backup.role == storage_pb2.Endpoint.BACKUP and not backup.default_upload
    assert backup.s3.has_secret_access_key and backup.s3.secret_access_key == ""
    disk = await rig_admin.GetEndpoint(storage_pb2.GetEndpointRequest(name=f"endpoints/{DISK}"))
    assert disk.read_weight == 0 and disk.read_priority == 200  # 0 is a real choice
    # Priority 0 can be chosen too, and a missing id is generated (validate_only stores nothing).
    checked = await rig_admin.CreateEndpoint(
        storage_pb2.CreateEndpointRequest(
            endpoint=storage_pb2.Endpoint(
                display_name="Check only",
                role=storage_pb2.Endpoint.BACKUP,
                local=storage_pb2.LocalConfig(root_path=str(rig.local_dir)),
                read_priority=0,
                enabled=False,
            ),
            validate_only=True,
        )
    )
    assert checked.read_priority == 0 and not checked.enabled and checked.name.startswith("endpoints/endpoint-")
    names = {e.name for e in (await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest())).endpoints}
    assert checked.name not in names
    # The secret is stored sealed: never in plain text in the database.
    config = json.loads(rig.sql(f"SELECT config FROM endpoints WHERE id = '{BACKUP}'"))
    assert "secret_access_key" not in config
    assert config["sealed_secret_access_key"].startswith("fernet:")
    assert rig.backup.credentials.secret_key not in rig.sql("SELECT config::text FROM endpoints")
    assert rig.backup.credentials.secret_key not in (rig.home / "storage.log").read_text()
    # Lists filter, order and page with opaque keyset tokens.
    everything = await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest(order_by="display_name desc"))
    paged, token = [], ""
    while True:
        page = await rig_admin.ListEndpoints(
            storage_pb2.ListEndpointsRequest(page_size=1, order_by="display_name desc", page_token=token)
        )
        paged += [e.name for e in page.endpoints]
        token = page.next_page_token
        if not token:
            break
    assert paged == [e.name for e in everything.endpoints] and len(paged) >= 3
    names = [e.display_name for e in everything.endpoints]
    assert names == sorted(names, reverse=True)
    first = await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest(page_size=1, order_by="display_name"))
    backups_only = await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest(filter="role = BACKUP AND type = S3"))
    assert [e.name for e in backups_only.endpoints] == [f"endpoints/{BACKUP}"]
    await expect_rpc_error(
        rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest(page_token=first.next_page_token)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


async def test_endpoint_mistakes_are_clear_errors_and_leak_nothing(rig, rig_admin, backups) -> None:
    async def create(endpoint, endpoint_id="", **kw):
        return await rig_admin.CreateEndpoint(
            storage_pb2.CreateEndpointRequest(endpoint=endpoint, endpoint_id=endpoint_id, **kw)
        )

    await expect_rpc_error(
        rig_admin.GetEndpoint(storage_pb2.GetEndpointRequest(name="endpoints/no-such-thing")),
        grpc.StatusCode.NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
    )
    await expect_rpc_error(
        rig_admin.GetEndpoint(storage_pb2.GetEndpointRequest(name="endpoints/Not_Valid")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ENDPOINT_NAME",
    )
    await expect_rpc_error(
        create(_s3_endpoint(rig.backup, "backup"), "9starts-with-digit"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ENDPOINT_ID",
    )
    await expect_rpc_error(
        create(_s3_endpoint(rig.backup, "backup"), BACKUP), grpc.StatusCode.ALREADY_EXISTS, "ENDPOINT_EXISTS"
    )
    wrong_secret = "wrong-" + uuid.uuid4().hex
    errors = [
        await expect_rpc_error(
            create(_s3_endpoint(rig.backup, "backup", secret=wrong_secret), "bad-credentials"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ACCESS_DENIED",
        ),
        await expect_rpc_error(
            create(_s3_endpoint(rig.backup, "no-such-bucket-here"), "bad-bucket"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "BUCKET_NOT_FOUND",
        ),
        await expect_rpc_error(
            create(_s3_endpoint(rig.backup, "backup", endpoint_url=f"http://127.0.0.1:{free_port()}"), "unreachable"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ENDPOINT_UNREACHABLE",
        ),
        await expect_rpc_error(
            create(_s3_endpoint(rig.backup, "backup", endpoint_url="ftp://nas/share"), "bad-url"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_S3_ENDPOINT_URL",
        ),
        await expect_rpc_error(
            create(
                storage_pb2.Endpoint(
                    display_name="gone",
                    role=storage_pb2.Endpoint.BACKUP,
                    local=storage_pb2.LocalConfig(root_path=str(rig.home / "absent")),
                ),
                "missing-dir",
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ENDPOINT_UNREACHABLE",
        ),
    ]
    for error in errors:  # no bucket, host, port or secret in what the caller sees
        for secret in ("no-such-bucket-here", wrong_secret, rig.backup.credentials.secret_key, "127.0.0.1"):
            assert secret not in (error.details() or ""), error.details()
    names = {e.name for e in (await rig_admin.ListEndpoints(storage_pb2.ListEndpointsRequest())).endpoints}
    assert not names & {"endpoints/bad-credentials", "endpoints/bad-bucket", "endpoints/unreachable"}
    # The default upload endpoint can be neither deleted, disabled nor made a backup.
    await expect_rpc_error(
        rig_admin.DeleteEndpoint(storage_pb2.DeleteEndpointRequest(name=f"endpoints/{PRIMARY}")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "DEFAULT_UPLOAD_ENDPOINT",
    )
    await expect_rpc_error(
        rig_admin.UpdateEndpoint(
            storage_pb2.UpdateEndpointRequest(
                endpoint=storage_pb2.Endpoint(name=f"endpoints/{PRIMARY}", enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "DEFAULT_UPLOAD_ENDPOINT",
    )
    await expect_rpc_error(
        rig_admin.UpdateEndpoint(
            storage_pb2.UpdateEndpointRequest(
                endpoint=storage_pb2.Endpoint(name=f"endpoints/{PRIMARY}", role=storage_pb2.Endpoint.BACKUP),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "DEFAULT_UPLOAD_ENDPOINT",
    )
    await expect_rpc_error(
        rig_admin.SetDefaultUploadEndpoint(storage_pb2.SetDefaultUploadEndpointRequest(name=f"endpoints/{BACKUP}")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOT_AN_UPLOAD_TARGET",
    )


async def test_deleting_an_endpoint_with_the_only_copy_is_refused_and_loses_nothing(
    rig, rig_admin, rig_objects, backups
) -> None:
    solo_dir = rig.home / "solo"
    solo_dir.mkdir(exist_ok=True)
    await rig_admin.CreateEndpoint(
        storage_pb2.CreateEndpointRequest(
            endpoint=storage_pb2.Endpoint(
                display_name="Solo disk",
                role=storage_pb2.Endpoint.PRIMARY,
                local=storage_pb2.LocalConfig(root_path=str(solo_dir)),
            ),
            endpoint_id="solo-disk",
        )
    )
    key, data = f"solo/{uuid.uuid4()}", os.urandom(5000)
    stored = await write(rig_objects, key, data, endpoint="endpoints/solo-disk", skip_replication=True)
    assert [r.endpoint for r in stored.replicas] == ["endpoints/solo-disk"]
    await expect_rpc_error(
        rig_admin.DeleteEndpoint(storage_pb2.DeleteEndpointRequest(name="endpoints/solo-disk")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ONLY_COPY",
    )
    _, body = await read(rig_objects, key)
    assert body == data
    await rig_objects.DeleteObject(storage_pb2.DeleteObjectRequest(key=key))
    await rig_admin.DeleteEndpoint(storage_pb2.DeleteEndpointRequest(name="endpoints/solo-disk"))
    assert not [p for p in solo_dir.rglob("*") if p.is_file()]


# ---------------------------------------------------------------------------- replication


async def test_backup_catches_up_after_it_was_stopped_mid_sync(rig, rig_admin, rig_objects, backups) -> None:
    prefix = f"sync-{uuid.uuid4().hex[:8]}"
    objects = await write_many(rig_objects, prefix, 300, 2048)
    await wait_for(
        lambda: replica_states(rig, prefix, BACKUP).get("verified", 0) >= 20, timeout_s=60, what="copies to start"
    )
    rig.backup.process.stop()
    try:
        # The health checker notices, and copies that fail record why.
        health = await wait_for(
            lambda: _health_if(rig_admin, storage_pb2.EndpointHealth.UNREACHABLE),
            timeout_s=30,
            what="the backup to be marked unreachable",
        )
        assert health.last_error and health.consecutive_failures >= 2 and health.HasField("last_check_time")
        status = await rig_admin.GetReplicationStatus(storage_pb2.GetReplicationStatusRequest())
        backup_status = next(e for e in status.endpoints if e.endpoint == f"endpoints/{BACKUP}")
        assert backup_status.verified_count < status.object_count
        assert status.under_replicated_count > 0
        assert replica_states(rig, prefix, BACKUP).get("verified", 0) < 300
        await wait_for(
            lambda: (
                rig.sql(
                    f"SELECT count(*) FROM replicas WHERE endpoint_id = '{BACKUP}' AND last_error <> '' "
                    f"AND object_key LIKE '{prefix}/%'"
                )
                != "0"
            ),
            timeout_s=30,
            what="a recorded copy failure",
        )
    finally:
        _restart(rig.backup)
    await wait_for(lambda: _all_verified(rig, prefix, 300), timeout_s=120, what="every object VERIFIED on both backups")
    assert _backup_keys(rig, prefix) == {k: hashlib.sha256(d).hexdigest() for k, d in objects.items()}
    for key, data in list(objects.items())[:5]:
        assert (rig.local_dir / key).read_bytes() == data
    await wait_for(
        lambda: _health_if(rig_admin, storage_pb2.EndpointHealth.HEALTHY), timeout_s=30, what="the backup healthy"
    )
    replicas = await rig_admin.ListReplicas(
        storage_pb2.ListReplicasRequest(filter=f'key:"{prefix}/" AND state != VERIFIED')
    )
    assert list(replicas.replicas) == []
    verified = await rig_admin.ListReplicas(
        storage_pb2.ListReplicasRequest(filter=f'key:"{prefix}/" AND endpoint = "endpoints/{BACKUP}"', page_size=100)
    )
    assert len(verified.replicas) == 100 and verified.next_page_token
    assert all(r.replica.state == storage_pb2.Replica.VERIFIED for r in verified.replicas)


async def _health_if(stub, state):
    endpoint = await stub.GetEndpoint(storage_pb2.GetEndpointRequest(name=f"endpoints/{BACKUP}"))
    return endpoint.health if endpoint.health.state == state else None


async def test_reads_fall_over_to_the_backup_when_the_primary_stops(rig, rig_admin, rig_objects, backups) -> None:
    prefix = f"failover-{uuid.uuid4().hex[:8]}"
    objects = await write_many(rig_objects, prefix, 4, 300_000)
    await wait_for(lambda: _all_verified(rig, prefix, 4), timeout_s=60, what="copies")
    rig.primary.process.stop()
    try:
        for key, data in objects.items():
            meta, body = await read(rig_objects, key)
            assert body == data and meta.sha256 == hashlib.sha256(data).hexdigest()
        key, data = next(iter(objects.items()))
        _, part = await read(rig_objects, key, offset=1000, limit=5000)
        assert part == data[1000:6000]
        # Writes need the primary: a clear error, nothing recorded.
        await expect_rpc_error(
            write(rig_objects, f"{prefix}/new", b"while the primary is down"), grpc.StatusCode.UNAVAILABLE
        )
        await expect_rpc_error(
            rig_objects.StatObject(storage_pb2.StatObjectRequest(key=f"{prefix}/new")), grpc.StatusCode.NOT_FOUND
        )
    finally:
        _restart(rig.primary)


async def test_scrub_finds_corrupt_and_missing_replicas_and_repairs_them(rig, rig_admin, rig_objects, backups) -> None:
    prefix = f"scrub-{uuid.uuid4().hex[:8]}"
    objects = await write_many(rig_objects, prefix, 6, 10_000)
    await wait_for(lambda: _all_verified(rig, prefix, 6), timeout_s=60, what="copies")
    keys = sorted(objects)
    client = minio_for(rig.backup)
    client.put_object("backup", keys[0], __import__("io").BytesIO(b"rotten bytes"), 12)  # corrupt
    client.remove_object("backup", keys[1])  # missing
    (rig.local_dir / keys[2]).write_bytes(b"x" + objects[keys[2]][1:])  # corrupt, same size
    (rig.local_dir / keys[3]).unlink()  # missing

    for endpoint in (BACKUP, DISK):
        scrub = await rig_admin.ScrubEndpoint(storage_pb2.ScrubEndpointRequest(name=f"endpoints/{endpoint}"))
        assert scrub.state == storage_pb2.Scrub.RUNNING and scrub.total_count >= 6

        async def finished(name=scrub.name):
            s = await rig_admin.GetScrub(storage_pb2.GetScrubRequest(name=name))
            return s if s.state != storage_pb2.Scrub.RUNNING else None

        done = await wait_for(finished, timeout_s=60, what=f"the scrub of {endpoint}")
        assert done.state == storage_pb2.Scrub.SUCCEEDED, done
        assert (done.corrupt_count, done.missing_count, done.error_count) == (1, 1, 0), done
        assert done.checked_count == done.total_count and done.HasField("end_time")
        await wait_for(lambda e=endpoint: _all_verified(rig, prefix, 6, (e,)), timeout_s=60, what="repairs")
    assert _backup_keys(rig, prefix) == {k: hashlib.sha256(d).hexdigest() for k, d in objects.items()}
    for key in keys[2:4]:
        assert (rig.local_dir / key).read_bytes() == objects[key]


async def test_a_read_that_finds_a_replica_missing_marks_only_that_replica_and_repairs_it(
    rig, rig_admin, rig_objects, backups
) -> None:
    prefix = f"missing-{uuid.uuid4().hex[:8]}"
    objects = await write_many(rig_objects, prefix, 1, 4000)
    await wait_for(lambda: _all_verified(rig, prefix, 1), timeout_s=60, what="copies")
    ((key, data),) = objects.items()
    minio_for(rig.primary).remove_object("primary", key)
    _, body = await read(rig_objects, key)  # served by a backup
    assert body == data
    await wait_for(
        lambda: minio_for(rig.primary).stat_object("primary", key).size == len(data) if _exists(rig, key) else False,
        timeout_s=30,
        what="the primary replica repaired",
    )
    primary = await rig_admin.GetEndpoint(storage_pb2.GetEndpointRequest(name=f"endpoints/{PRIMARY}"))
    assert primary.health.state == storage_pb2.EndpointHealth.HEALTHY  # one missing object is not an outage


def _exists(rig, key: str) -> bool:
    try:
        minio_for(rig.primary).stat_object("primary", key)
        return True
    except Exception:
        return False


async def test_concurrent_writers_of_one_key_never_overwrite_each_other(rig, rig_objects, backups) -> None:
    key = f"race/{uuid.uuid4()}"
    contents = [os.urandom(200_000) for _ in range(6)]
    results = await asyncio.gather(*(write(rig_objects, key, c) for c in contents), return_exceptions=True)
    winners = [c for c, r in zip(contents, results, strict=True) if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() is grpc.StatusCode.ALREADY_EXISTS for e in losers)
    _, body = await read(rig_objects, key)
    assert body == winners[0]
    assert minio_for(rig.primary).get_object("primary", key).read() == winners[0]


async def test_deletes_reach_every_replica_even_one_that_is_down(rig, rig_admin, rig_objects, backups) -> None:
    prefix = f"delete-{uuid.uuid4().hex[:8]}"
    objects = await write_many(rig_objects, prefix, 2, 3000)
    await wait_for(lambda: _all_verified(rig, prefix, 2), timeout_s=60, what="copies")
    first, second = sorted(objects)
    await rig_objects.DeleteObject(storage_pb2.DeleteObjectRequest(key=first))
    await rig_objects.DeleteObject(storage_pb2.DeleteObjectRequest(key=first))  # idempotent
    await rig_objects.DeleteObject(storage_pb2.DeleteObjectRequest(key=f"{prefix}/never-existed"))
    assert not _exists(rig, first) and not (rig.local_dir / first).exists() and first not in _backup_keys(rig, prefix)
    await expect_rpc_error(rig_objects.StatObject(storage_pb2.StatObjectRequest(key=first)), grpc.StatusCode.NOT_FOUND)
    rig.backup.process.stop()
    try:
        await rig_objects.DeleteObject(storage_pb2.DeleteObjectRequest(key=second))
        await expect_rpc_error(
            rig_objects.StatObject(storage_pb2.StatObjectRequest(key=second)), grpc.StatusCode.NOT_FOUND
        )
        assert not (rig.local_dir / second).exists()
        # The row waits for the backup: no replica claims to be VERIFIED once its bytes may be gone.
        assert rig.sql(f"SELECT state FROM replicas WHERE object_key = '{second}'") == "deleting"
    finally:
        _restart(rig.backup)
    await wait_for(lambda: second not in _backup_keys(rig, prefix), timeout_s=60, what="the queued delete")
    await wait_for(
        lambda: rig.sql(f"SELECT count(*) FROM objects WHERE key = '{second}'") == "0", timeout_s=30, what="row gone"
    )


async def test_presigned_put_is_committed_only_after_size_and_sha256_check(
    rig, rig_admin, rig_objects, backups
) -> None:
    key = f"presigned/{uuid.uuid4()}"
    data = os.urandom(70_000)

    async def presign_put():
        return await rig_objects.CreatePresignedUrl(
            storage_pb2.CreatePresignedUrlRequest(
                key=key,
                method=storage_pb2.CreatePresignedUrlRequest.PUT,
                content_type="image/jpeg",
                ttl=duration_pb2.Duration(seconds=300),
            )
        )

    put = await presign_put()
    await expect_rpc_error(presign_put(), grpc.StatusCode.ALREADY_EXISTS)  # the key is claimed
    async with httpx.AsyncClient() as http:
        assert (await http.put(put.url, content=b"not what was promised", headers=dict(put.headers))).status_code == 200
        # Nothing exists for anyone before the commit.
        await expect_rpc_error(
            rig_objects.StatObject(storage_pb2.StatObjectRequest(key=key)), grpc.StatusCode.NOT_FOUND
        )
        await expect_rpc_error(
            rig_objects.CommitObject(
                storage_pb2.CommitObjectRequest(key=key, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "UPLOAD_MISMATCH",
        )
        put = await presign_put()  # the failed commit freed the key
        assert (await http.put(put.url, content=data, headers=dict(put.headers))).status_code == 200
        stored = await rig_objects.CommitObject(
            storage_pb2.CommitObjectRequest(key=key, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        )
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert {r.endpoint: r.state for r in stored.replicas}[f"endpoints/{PRIMARY}"] == storage_pb2.Replica.VERIFIED
        # A public URL, when set, is what presigned links are built on.
        public = rig.primary.endpoint_url.replace("127.0.0.1", "localhost")
        await rig_admin.UpdateEndpoint(
            storage_pb2.UpdateEndpointRequest(
                endpoint=storage_pb2.Endpoint(name=f"endpoints/{PRIMARY}", s3=storage_pb2.S3Config(public_url=public)),
                update_mask=field_mask_pb2.FieldMask(paths=["s3.public_url"]),
            )
        )
        get = await rig_objects.CreatePresignedUrl(
            storage_pb2.CreatePresignedUrlRequest(key=key, method=storage_pb2.CreatePresignedUrlRequest.GET)
        )
        assert get.url.startswith(public + "/")
        assert (await http.get(get.url)).content == data
    await wait_for(lambda: key in _backup_keys(rig, "presigned"), timeout_s=30, what="the committed object copied")


async def test_kill_9_mid_replication_resumes_without_loss_or_second_copies(
    rig, rig_admin, rig_objects, backups
) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    backup_name = f"endpoints/{BACKUP}"

    async def set_enabled(flag: bool):
        return await rig_admin.UpdateEndpoint(
            storage_pb2.UpdateEndpointRequest(
                endpoint=storage_pb2.Endpoint(name=backup_name, enabled=flag),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            )
        )

    await set_enabled(False)
    objects = await write_many(rig_objects, prefix, 120, 128 * 1024)
    assert replica_states(rig, prefix, BACKUP) == {}  # a disabled backup receives nothing
    await set_enabled(True)  # back-fills exactly what it lacks
    await wait_for(
        lambda: replica_states(rig, prefix, BACKUP).get("verified", 0) >= 10,
        timeout_s=60,
        what="copies under way",
        interval_s=0.05,
    )
    rig.kill9()
    before = dict(
        line.split("|", 1)
        for line in rig.sql(
            f"SELECT object_key, verify_time::text || '/' || attempt_count FROM replicas "
            f"WHERE endpoint_id = '{BACKUP}' AND state = 'verified' AND object_key LIKE '{prefix}/%'"
        ).splitlines()
    )
    assert 10 <= len(before) < 120, "the kill must land mid-replication"
    # An older version kept secrets in plain text: the restarted service seals them.
    rig.sql(
        "UPDATE endpoints SET config = (config - 'sealed_secret_access_key') || "
        f"jsonb_build_object('secret_access_key', '{rig.primary.credentials.secret_key}') WHERE id = '{PRIMARY}'"
    )
    rig.start()
    await wait_for(lambda: _all_verified(rig, prefix, 120, (BACKUP,)), timeout_s=120, what="the queue to resume")
    # Nothing lost: every object is on the backup with its own bytes, and nothing else is.
    assert _backup_keys(rig, prefix) == {k: hashlib.sha256(d).hexdigest() for k, d in objects.items()}
    # Nothing copied twice: replicas verified before the kill were not touched again, and at most
    # the copies in flight at the kill (the queue's concurrency) were attempted a second time.
    after = dict(
        line.split("|", 1)
        for line in rig.sql(
            f"SELECT object_key, verify_time::text || '/' || attempt_count FROM replicas "
            f"WHERE endpoint_id = '{BACKUP}' AND object_key LIKE '{prefix}/%'"
        ).splitlines()
    )
    assert {k: after[k] for k in before} == before
    attempts = sum(int(v.rsplit("/", 1)[1]) for v in after.values())
    assert attempts <= 120 + 4, attempts  # 4: the rig's replication concurrency
    assert rig.sql("SELECT count(*) FROM pgqueuer WHERE entrypoint = 'storage.replicate'") == "0"
    # The secret was sealed again on start, and the endpoint still works with it.
    config = json.loads(rig.sql(f"SELECT config FROM endpoints WHERE id = '{PRIMARY}'"))
    assert "secret_access_key" not in config and config["sealed_secret_access_key"].startswith("fernet:")
    await write(rig_objects, f"{prefix}/after-restart", b"still writable")
