"""The hand-off of just-uploaded originals to the processing job: a shortcut that never serves
bytes other than the asset's own, and never grows past its budget."""

from __future__ import annotations

import hashlib
import io
import os

from imgtag_catalog.adapters.recent_originals import RecentOriginals


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_kept_original_is_taken_once_with_its_bytes(tmp_path) -> None:
    recent = RecentOriginals(tmp_path, max_bytes=10_000)
    data = os.urandom(5000)
    source = io.BytesIO(data)
    source.seek(123)
    recent.keep(key="originals/a", data=source, size=len(data))
    assert source.tell() == 0  # rewound for whoever reads the upload next
    with recent.take(key="originals/a", sha256=_sha(data)) as taken:
        assert taken.read() == data
    assert recent.take(key="originals/a", sha256=_sha(data)) is None
    assert list(tmp_path.iterdir()) == []


def test_bytes_that_do_not_match_the_checksum_are_not_served(tmp_path) -> None:
    recent = RecentOriginals(tmp_path, max_bytes=10_000)
    recent.keep(key="originals/a", data=io.BytesIO(b"these bytes"), size=11)
    assert recent.take(key="originals/a", sha256=_sha(b"other bytes")) is None
    assert list(tmp_path.iterdir()) == []


def test_nothing_past_the_budget_is_kept(tmp_path) -> None:
    recent = RecentOriginals(tmp_path, max_bytes=1000)
    first, second = os.urandom(600), os.urandom(600)
    recent.keep(key="originals/a", data=io.BytesIO(first), size=600)
    recent.keep(key="originals/b", data=io.BytesIO(second), size=600)
    assert recent.take(key="originals/b", sha256=_sha(second)) is None  # the job reads it from storage
    recent.take(key="originals/a", sha256=_sha(first)).close()
    recent.keep(key="originals/b", data=io.BytesIO(second), size=600)  # room again
    recent.take(key="originals/b", sha256=_sha(second)).close()


def test_copies_no_job_took_in_time_are_dropped(tmp_path) -> None:
    recent = RecentOriginals(tmp_path, max_bytes=1000, max_age_s=0)
    data = os.urandom(100)
    recent.keep(key="originals/a", data=io.BytesIO(data), size=100)
    recent.keep(key="originals/b", data=io.BytesIO(data), size=100)  # expires the first
    assert recent.take(key="originals/a", sha256=_sha(data)) is None
    assert len(list(tmp_path.iterdir())) == 1
    recent.close()
    assert not tmp_path.exists()
