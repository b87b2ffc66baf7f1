import io
from pathlib import Path

import pytest

from imgtag_common.errors import InvalidArgument, NotFound
from imgtag_storage.domain.backends import LocalBackend, validate_key


def test_put_open_ranges_and_delete(tmp_path: Path) -> None:
    backend = LocalBackend(root=str(tmp_path))
    backend.put("originals/a", io.BytesIO(b"0123456789"), 10, "image/png", "x")
    assert backend.size("originals/a") == 10
    assert backend.open("originals/a").read(100) == b"0123456789"
    assert backend.open("originals/a", 2, 3).read(100) == b"234"
    assert not list(tmp_path.rglob(".incoming-*"))  # atomic write left no temp file
    backend.delete("originals/a")
    with pytest.raises(NotFound):
        backend.open("originals/a")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a/.", "x" * 600])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_key(key)
