"""CatalogService over gRPC against real PostgreSQL (+pgvector) and storage (session stack)."""

from __future__ import annotations

import grpc
import pytest

from imgtag.catalog.v1 import assets_pb2, catalog_pb2_grpc
from imgtag_dev.testing import as_user, channel_as, unique_png

pytestmark = pytest.mark.integration


@pytest.fixture
async def catalog(stack, new_user):
    """The catalog, called directly (no gateway) by a user of its own."""
    async with channel_as(stack.service_target("catalog"), as_user(new_user())) as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


def _upload(data: bytes, filename: str = "x.png", chunk: int = 1000, **first):
    yield assets_pb2.UploadAssetRequest(filename=filename, **first)
    for i in range(0, len(data), chunk):
        yield assets_pb2.UploadAssetRequest(content={"data": data[i : i + chunk]})


def test_migrations_enable_pgvector(stack) -> None:
    assert (
        stack.postgres.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'", "imgtag_catalog")
        == "0.8.2"
    )
    assert stack.postgres.query("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector < 0.01", "imgtag_catalog") == "t"


async def test_chunked_grpc_upload_and_keyset_pages_see_every_asset_once(catalog) -> None:
    created = []
    for i in range(7):
        asset = await catalog.UploadAsset(_upload(unique_png(), f"page-{i}.png", chunk=50))
        created.append(asset.name)
    seen, token = [], ""
    while True:
        page = await catalog.ListAssets(assets_pb2.ListAssetsRequest(page_size=3, page_token=token))
        assert len(page.assets) <= 3
        seen += [a.name for a in page.assets]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert set(created) <= set(seen)
    # Newest first: the last upload comes before the first.
    assert seen.index(created[-1]) < seen.index(created[0])


async def test_trash_hides_from_list_but_keeps_the_asset(catalog) -> None:
    asset = await catalog.UploadAsset(_upload(unique_png()))
    trashed = await catalog.DeleteAsset(assets_pb2.DeleteAssetRequest(name=asset.name))
    assert trashed.state == assets_pb2.Asset.TRASHED
    assert trashed.purge_time.ToDatetime() > trashed.delete_time.ToDatetime()
    listed = await catalog.ListAssets(assets_pb2.ListAssetsRequest(page_size=500))
    assert asset.name not in {a.name for a in listed.assets}
    with_trash = await catalog.ListAssets(assets_pb2.ListAssetsRequest(page_size=500, show_deleted=True))
    assert asset.name in {a.name for a in with_trash.assets}
    assert (await catalog.GetAsset(assets_pb2.GetAssetRequest(name=asset.name))).sha256 == asset.sha256


async def test_expected_sha256_mismatch_is_a_client_error_and_records_nothing(stack, catalog) -> None:
    before = stack.postgres.query("SELECT count(*) FROM assets", "imgtag_catalog")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.UploadAsset(_upload(unique_png(), expected_sha256="f" * 64))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert stack.postgres.query("SELECT count(*) FROM assets", "imgtag_catalog") == before


async def test_bad_list_arguments_are_invalid_argument(catalog) -> None:
    for request in (
        assets_pb2.ListAssetsRequest(page_size=-1),
        assets_pb2.ListAssetsRequest(page_token="not-a-token"),
        assets_pb2.ListAssetsRequest(order_by="filename"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await catalog.ListAssets(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
