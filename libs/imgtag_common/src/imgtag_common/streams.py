"""Streamed bytes and messages, handled the same way in every service."""

from __future__ import annotations

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
