"""Bad input through the real gateway: right HTTP status, a JSON google.rpc.Status body with an
ErrorInfo reason, and nothing already stored is touched."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _error(reply: httpx.Response, status: int, code: int, reason: str | None = None) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == code and body["message"]
    if reason is not None:
        assert [d["reason"] for d in body["details"] if d["@type"].endswith("ErrorInfo")] == [reason]
    return body


def test_missing_asset_is_404_json(http: httpx.Client) -> None:
    _error(http.get(f"/v1/assets/{uuid.uuid4()}"), 404, 5, "ASSET_NOT_FOUND")
    _error(http.get(f"/v1/assets/{uuid.uuid4()}/content"), 404, 5, "ASSET_NOT_FOUND")


def test_malformed_asset_name_is_400_json(http: httpx.Client) -> None:
    _error(http.get("/v1/assets/not-a-uuid"), 400, 3, "INVALID_ASSET_NAME")


def test_unknown_api_path_is_404_json(http: httpx.Client) -> None:
    _error(http.get("/v1/nothing/here"), 404, 5)
    _error(http.post("/v1/assets:frobnicate"), 404, 5)


def test_unknown_query_parameter_is_400_json(http: httpx.Client) -> None:
    _error(http.get("/v1/assets", params={"pageSise": 3}), 400, 3)


def test_bad_page_token_is_400_json(http: httpx.Client) -> None:
    _error(http.get("/v1/assets", params={"page_token": "garbage"}), 400, 3, "INVALID_PAGE_TOKEN")


def test_malformed_json_body_is_400_json(http: httpx.Client) -> None:
    _error(http.post("/v1/assets:search", content=b"{not json", headers={"content-type": "application/json"}), 400, 3)


def test_not_yet_implemented_method_is_501_json(anonymous: httpx.Client, admin) -> None:
    # Importing from a folder already on a storage endpoint is in the contract but not built yet.
    body = {"source": {"storage": {"endpoint": "endpoints/primary-s3", "pathPrefix": "incoming/"}}}
    _error(anonymous.post("/v1/assets:import", json=body, headers=admin.headers), 501, 12, "STORAGE_IMPORT_NOT_BUILT")


async def test_grpc_clients_reach_public_methods_but_not_internal_ones(gateway_url: str, user) -> None:
    import grpc

    from imgtag.catalog.v1 import assets_pb2, catalog_pb2_grpc
    from imgtag.storage.v1 import storage_pb2, storage_pb2_grpc

    async with grpc.aio.insecure_channel(gateway_url.removeprefix("http://")) as channel:
        page = await catalog_pb2_grpc.CatalogServiceStub(channel).ListAssets(
            assets_pb2.ListAssetsRequest(page_size=1), metadata=user.grpc_metadata()
        )
        assert isinstance(page, assets_pb2.ListAssetsResponse)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in storage_pb2_grpc.StorageServiceStub(channel).ReadObject(
                storage_pb2.ReadObjectRequest(key="originals/x")
            ):
                pass
    # Envoy answers a gRPC caller of an unrouted method the gRPC way: UNIMPLEMENTED.
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "no such public method" in caught.value.details()


def test_non_image_upload_is_rejected_and_nothing_is_stored(stack, http: httpx.Client) -> None:
    before = stack.postgres.query("SELECT count(*) FROM assets", "imgtag_catalog")
    objects_before = stack.postgres.query("SELECT count(*) FROM objects", "imgtag_storage")
    _error(
        http.post(
            "/v1/assets:upload",
            params={"filename": "notes.txt"},
            content=b"just text",
            headers={"content-type": "text/plain"},
        ),
        400,
        3,
        "NOT_AN_IMAGE",
    )
    _error(
        http.post(
            "/v1/assets:upload", params={"filename": "empty.png"}, content=b"", headers={"content-type": "image/png"}
        ),
        400,
        3,
        "EMPTY_UPLOAD",
    )
    assert stack.postgres.query("SELECT count(*) FROM assets", "imgtag_catalog") == before
    assert stack.postgres.query("SELECT count(*) FROM objects", "imgtag_storage") == objects_before


def test_duplicate_upload_is_409_and_names_the_existing_asset(http: httpx.Client) -> None:
    data = (Path(__import__("skimage").__file__).parent / "data" / "coffee.png").read_bytes()
    first = http.post(
        "/v1/assets:upload", params={"filename": "coffee.png"}, content=data, headers={"content-type": "image/png"}
    )
    assert first.status_code in (200, 409)
    second = http.post(
        "/v1/assets:upload",
        params={"filename": "coffee-again.png"},
        content=data,
        headers={"content-type": "image/png"},
    )
    body = _error(second, 409, 6, "DUPLICATE_ASSET")
    existing = body["details"][0]["metadata"]["asset"]
    assert http.get(f"/v1/{existing}").json()["sha256"] == hashlib.sha256(data).hexdigest()
    allowed = http.post(
        "/v1/assets:upload",
        params={"filename": "coffee-copy.png", "allow_duplicate": "true"},
        content=data,
        headers={"content-type": "image/png"},
    )
    assert allowed.status_code == 200 and allowed.json()["name"] != existing


def test_spa_is_served_from_the_same_origin(http: httpx.Client) -> None:
    index = http.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<div id="app">' in index.text
    # Client-side routes fall back to index.html; hashed bundles are immutable.
    assert http.get("/collections/some/deep/route").text == index.text
    script = next(part.split('"')[0] for part in index.text.split('src="')[1:] if part.startswith("/assets/"))
    bundle = http.get(script)
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript") or bundle.headers["content-type"].startswith(
        "application/javascript"
    )
    assert "immutable" in bundle.headers["cache-control"]
