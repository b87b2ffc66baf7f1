"""The walking skeleton, through the real Envoy gateway: a REST upload is written to S3 by the
storage service, recorded in PostgreSQL by the catalog, listed, and downloaded byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from minio import Minio

pytestmark = pytest.mark.e2e


def test_upload_list_download_round_trip(stack, http: httpx.Client, photo: Path) -> None:
    data = photo.read_bytes()
    reply = http.post(
        "/v1/assets:upload", params={"filename": "chelsea 猫.png"}, content=data, headers={"content-type": "image/png"}
    )
    assert reply.status_code == 200, reply.text
    asset = reply.json()
    asset_id = asset["name"].removeprefix("assets/")
    assert asset["filename"] == "chelsea 猫.png"
    assert (asset["contentType"], asset["width"], asset["height"]) == ("image/png", 451, 300)
    assert asset["sizeBytes"] == str(len(data))  # int64 is a JSON string
    assert asset["sha256"] == hashlib.sha256(data).hexdigest()

    # A row in PostgreSQL ...
    row = stack.postgres.query(
        f"SELECT filename, size_bytes, object_key FROM assets WHERE id = '{asset_id}'", "imgtag_catalog"
    )
    assert row == f"chelsea 猫.png|{len(data)}|originals/{asset_id}"
    # ... and the original in the S3 bucket, written through the storage service.
    s3 = Minio(
        stack.s3.endpoint_url.split("://")[1],
        access_key=stack.s3.credentials.access_key,
        secret_key=stack.s3.credentials.secret_key,
        secure=False,
    )
    assert s3.get_object("imgtag", f"originals/{asset_id}").read() == data

    listed = http.get("/v1/assets", params={"page_size": 500}).json()
    assert asset["name"] in [a["name"] for a in listed["assets"]]

    download = http.get(f"/v1/{asset['name']}/content")
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert hashlib.sha256(download.content).hexdigest() == asset["sha256"]
    assert "immutable" in download.headers["cache-control"]

    got = http.get(f"/v1/{asset['name']}").json()
    # The same asset (processing moves on meanwhile, and GetAsset adds the full EXIF).
    stable = ("name", "filename", "contentType", "sizeBytes", "sha256", "width", "height", "owner", "createTime")
    assert {k: got[k] for k in stable} == {k: asset[k] for k in stable}


def test_large_upload_streams_through_the_gateway(http: httpx.Client, tmp_path: Path) -> None:
    """A 40 MB photo-sized file passes the gateway (streamed, not buffered as one message)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(3).integers(0, 255, (3000, 4500, 3), dtype=np.uint8)
    path = tmp_path / "big.bmp"
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    assert len(data) > 40_000_000
    reply = http.post(
        "/v1/assets:upload",
        params={"filename": "big.bmp"},
        content=data,
        headers={"content-type": "image/bmp"},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    download = http.get(f"/v1/{reply.json()['name']}/content", timeout=120)
    assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(data).hexdigest()
