import io
from pathlib import Path

import pytest

from imgtag_common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from imgtag_storage.adapters.local import LocalBackend
from imgtag_storage.domain.models import validate_key


def test_put_open_ranges_checksum_and_delete(tmp_path: Path) -> None:
    backend = LocalBackend(label="endpoints/disk", root_path=str(tmp_path))
    backend.put("originals/a", io.BytesIO(b"0123456789"), "image/png")
    assert backend.checksum("originals/a") == (10, __import__("hashlib").sha256(b"0123456789").hexdigest())
    assert backend.open("originals/a").read(100) == b"0123456789"
    assert backend.open("originals/a", 2, 3).read(100) == b"234"
    assert not list(tmp_path.rglob(".incoming-*"))  # atomic write left no temp file
    backend.delete("originals/a")
    backend.delete("originals/a")  # absent is fine
    with pytest.raises(NotFound):
        backend.open("originals/a")


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    class Broken:
        def read(self, n: int = -1) -> bytes:
            raise OSError("stream broke")

    backend = LocalBackend(label="endpoints/disk", root_path=str(tmp_path))
    with pytest.raises(OSError):
        backend.put("originals/b", Broken(), "image/png")  # type: ignore[arg-type]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_probe_and_missing_or_read_only_directories(tmp_path: Path) -> None:
    LocalBackend(label="endpoints/disk", root_path=str(tmp_path)).probe()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the probe cleans up
    with pytest.raises(Unavailable):
        LocalBackend(label="endpoints/disk", root_path=str(tmp_path / "absent")).probe()
    with pytest.raises(FailedPrecondition):
        LocalBackend(label="endpoints/disk", root_path=str(tmp_path)).presign(
            "a", method="GET", ttl=__import__("datetime").timedelta(minutes=1), content_type=""
        )


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a/.", "x" * 1100, "a b", ".imgtag/x", "é"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_key(key)
