"""Originals just uploaded, kept on this machine's disk until this process's processing job has
read them, so the job does not fetch back through storage the megabytes it received a moment
ago. Only a shortcut: the job reads from storage whenever a file is not here (another replica
took the upload, the budget was full, the process restarted) or does not hold the asset's bytes
(checked by SHA-256). The directory belongs to the process and goes with it."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_COPY_CHUNK = 1024 * 1024


class RecentOriginals:
    """Blocking file I/O: call through the BlockingExecutor."""

    def __init__(self, directory: Path, *, max_bytes: int, max_age_s: float = 600.0) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._kept: dict[str, tuple[int, float]] = {}  # file name -> (size, when kept)
        self._lock = threading.Lock()

    def keep(self, *, key: str, data: BinaryIO, size: int) -> None:
        """Copy `data` for the job, unless that would pass the byte budget; `data` is rewound."""
        self._expire()
        name = _file_name(key)
        with self._lock:
            if name in self._kept or sum(s for s, _ in self._kept.values()) + size > self._max_bytes:
                return
            self._kept[name] = (size, time.monotonic())
        path = self._directory / name
        partial = path.with_suffix(".partial")
        try:
            data.seek(0)
            with open(partial, "wb") as out:
                shutil.copyfileobj(data, out, _COPY_CHUNK)
            partial.rename(path)
        except OSError as error:
            log.warning("cannot keep %s for processing (%s); the job reads it from storage", key, error)
            with self._lock:
                self._kept.pop(name, None)
            partial.unlink(missing_ok=True)
        finally:
            data.seek(0)

    def take(self, *, key: str, sha256: str) -> BinaryIO | None:
        """The kept copy of `key`, opened at its start, if it holds exactly these bytes; it is
        then no longer kept (the open file stays readable until closed)."""
        name = _file_name(key)
        with self._lock:
            if self._kept.pop(name, None) is None:
                return None
        path = self._directory / name
        try:
            file = open(path, "rb")  # the caller closes it
        except OSError:
            return None
        finally:
            path.unlink(missing_ok=True)
        if hashlib.file_digest(file, "sha256").hexdigest() != sha256:
            log.warning("the kept copy of %s does not match its checksum; the job reads it from storage", key)
            file.close()
            return None
        file.seek(0)
        return file

    def _expire(self) -> None:
        """Forget copies no job took in time (their job ran in another process, or failed)."""
        cutoff = time.monotonic() - self._max_age_s
        with self._lock:
            stale = [name for name, (_, kept) in self._kept.items() if kept < cutoff]
            for name in stale:
                del self._kept[name]
        for name in stale:
            (self._directory / name).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]
