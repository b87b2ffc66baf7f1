"""`imgtag import` against the session stack with a real API key: a folder with subfolders, a
ZIP inside it and a loose file are imported with progress and a summary; a corrupt image fails on
its own (exit code 1) while the others get in; a re-run sends nothing and says so."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imgtag_dev.archive_fixtures import build_zip
from imgtag_dev.testing import SKIMAGE_PHOTOS, Account, unique_png

pytestmark = pytest.mark.e2e

IMGTAG = Path(sys.executable).parent / "imgtag"


def _jpeg(name: str) -> bytes:
    out = io.BytesIO()
    Image.open(SKIMAGE_PHOTOS / name).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def _imgtag_import(gateway_url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMGTAG_URL": gateway_url, "IMGTAG_API_KEY": key, "TTY_INTERACTIVE": "1", "COLUMNS": "160"}
    return subprocess.run(
        [str(IMGTAG), "import", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _assets(client: httpx.Client, key: str) -> dict[str, dict]:
    listed = client.get("/v1/assets", params={"page_size": 500}, headers={"x-api-key": key}).json()
    return {a["filename"]: a for a in listed.get("assets", [])}


def test_imgtag_import_is_resumable_and_reports_failures(
    gateway_url: str, anonymous: httpx.Client, new_user, tmp_path: Path
) -> None:
    owner: Account = new_user()
    created = anonymous.post(
        "/v1/users/me/apiKeys",
        json={"displayName": "import", "scopes": ["ASSETS_UPLOAD", "ASSETS_READ"]},
        headers=owner.headers,
    )
    key = created.json()["secret"]
    library = tmp_path / "Pictures"
    (library / "2023" / "summer").mkdir(parents=True)
    (library / "a.png").write_bytes((SKIMAGE_PHOTOS / "chelsea.png").read_bytes())
    (library / "2023" / "b.png").write_bytes((SKIMAGE_PHOTOS / "coffee.png").read_bytes())
    (library / "2023" / "summer" / "c.jpg").write_bytes(_jpeg("astronaut.png"))
    (library / "2023" / "notes.txt").write_text("not a photo\n")
    (library / "2023" / "summer" / "copy of a.png").write_bytes((SKIMAGE_PHOTOS / "chelsea.png").read_bytes())
    (library / "phone.zip").write_bytes(
        build_zip([("DCIM/", b""), ("DCIM/d.png", unique_png()), ("e.png", unique_png()), ("info.txt", b"x")])
    )
    corrupt = library / "2023" / "broken [cut].png"
    corrupt.write_bytes((SKIMAGE_PHOTOS / "coffee.png").read_bytes()[:100_000])
    loose = tmp_path / "f.png"
    loose.write_bytes(unique_png())

    first = _imgtag_import(gateway_url, key, str(library), str(loose), "--jobs", "3", "--tag", "imported")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "found 8 images (2 other files left out)" in first.stdout
    assert "created 6 · duplicate 1 · already there 0 · failed 1" in first.stdout
    assert f"failed {corrupt}: " in first.stdout and "CORRUPT_IMAGE" in first.stdout
    assert "importing" in first.stderr and "8/8" in first.stderr  # the progress bar
    assets = _assets(anonymous, key)
    assert set(assets) == {"a.png", "b.png", "c.jpg", "d.png", "e.png", "f.png"}
    # --tag adds a manual tag to each photo (the pipeline may have added AI suggestions meanwhile)
    assert all(
        [t["displayName"] for t in a["tags"] if t["source"] == "MANUAL"] == ["imported"] for a in assets.values()
    ), assets

    corrupt.unlink()
    again = _imgtag_import(gateway_url, key, str(library), str(loose))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing new to import: 7 images are already in your library" in again.stdout
    assert "created 0 · duplicate 0 · already there 7 · failed 0" in again.stdout
    assert len(_assets(anonymous, key)) == 6


def test_imgtag_import_stops_with_a_clear_message_when_the_key_is_refused(gateway_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(unique_png())
    refused = _imgtag_import(gateway_url, "itk_not-a-real-key", str(tmp_path))
    assert refused.returncode == 2
    assert "the API key was refused" in refused.stdout
