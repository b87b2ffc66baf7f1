"""pytest fixtures shared by every test tree (loaded from the root conftest.py): one real stack
(PostgreSQL+pgvector, SeaweedFS S3, the four services, Envoy) on free ports per test session."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imgtag_dev.processes import tail
from imgtag_dev.stack import Stack, StackSettings, running

SKIMAGE_PHOTOS = Path(__import__("skimage").__file__).parent / "data"


def unique_png(width: int = 16, height: int = 12) -> bytes:
    """A small PNG whose bytes no other test produces (uploads of equal bytes are duplicates)."""
    pixels = os.urandom(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG")
    return out.getvalue()


def new_data_dir() -> Path:
    """A temporary data dir the unprivileged PostgreSQL user can traverse (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="imgtag-test-"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    data_dir = new_data_dir()
    settings = StackSettings.on_free_ports(data_dir)
    try:
        with running(settings) as started:
            yield started
    except Exception:
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"==== {log.name}\n{tail(log, 40)}")
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.gateway_url


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photograph (scikit-image's cat, 451x300 PNG)."""
    return SKIMAGE_PHOTOS / "chelsea.png"
