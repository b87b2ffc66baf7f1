"""Streamed bytes and messages, handled the same way in every service."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import ImgTagError

T = TypeVar("T")


@dataclass(frozen=True)
class Spooled:
    """Received bytes held in a temporary file (rewound), with their size and SHA-256."""

    file: BinaryIO
    size: int
    sha256: str


@asynccontextmanager
async def spooled(
    chunks: AsyncIterator[bytes],
    executor: BlockingExecutor,
    *,
    memory_bytes: int,
    max_bytes: int,
    too_large: ImgTagError,
) -> AsyncIterator[Spooled]:
    """Receive a chunk stream into memory (spilling to disk past `memory_bytes`), hashing as it
    arrives; raise `too_large` as soon as it passes `max_bytes`. The file is closed on exit."""
    file = tempfile.SpooledTemporaryFile(max_size=memory_bytes)
    try:
        digest, size = hashlib.sha256(), 0
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            digest.update(chunk)
            await executor.run(file.write, chunk)
        file.seek(0)
        yield Spooled(file=file, size=size, sha256=digest.hexdigest())
    finally:
        file.close()


async def peek_first(messages: AsyncIterator[T]) -> tuple[T | None, AsyncIterator[T]]:
    """The first message of a client stream (None if empty) and the whole stream, first included."""
    iterator = aiter(messages)
    first = await anext(iterator, None)

    async def whole() -> AsyncIterator[T]:
        if first is not None:
            yield first
            async for message in iterator:
                yield message

    return first, whole()


class ChunkReader:
    """A blocking, file-like view of an async chunk stream, for SDKs that pull bytes from a
    `read(n)` in a worker thread (minio's put_object). Each read pulls the next chunks from the
    event loop, so at most `n` bytes plus one chunk are held: nothing is spooled. The SHA-256
    and size of everything read are computed on the way; passing `max_bytes` raises
    `too_large`. Only call `read` from a thread other than the loop's."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        loop: asyncio.AbstractEventLoop,
        *,
        max_bytes: int,
        too_large: ImgTagError,
    ) -> None:
        self._chunks = aiter(chunks)
        self._loop = loop
        self._max_bytes = max_bytes
        self._too_large = too_large
        self._pending: list[bytes] = []  # received, not yet read
        self._pending_bytes = 0
        self._ended = False
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _next_chunk(self) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(anext(self._chunks, None), self._loop)
        return future.result()

    def read(self, n: int = -1) -> bytes:
        while not self._ended and (n < 0 or self._pending_bytes < n):
            chunk = self._next_chunk()
            if chunk is None:
                self._ended = True
                break
            self.size += len(chunk)
            if self.size > self._max_bytes:
                raise self._too_large
            self._digest.update(chunk)
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
        if n < 0 or n >= self._pending_bytes:
            taken, self._pending, self._pending_bytes = self._pending, [], 0
            return b"".join(taken)
        # Whole chunks up to n, and the head of the next one: one copy of n bytes, no more.
        taken, count = [], 0
        while count + len(self._pending[0]) <= n:
            chunk = self._pending.pop(0)
            taken.append(chunk)
            count += len(chunk)
        head = n - count
        if head:
            first = self._pending[0]
            taken.append(first[:head])
            self._pending[0] = first[head:]
        self._pending_bytes -= n
        return b"".join(taken)

    def drain(self) -> None:
        """Read (and hash) whatever is left without keeping it."""
        while self.read(1024 * 1024):
            pass
