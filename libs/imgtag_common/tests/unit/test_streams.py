import asyncio
import hashlib

import pytest

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import ResourceExhausted
from imgtag_common.streams import ChunkReader, peek_first, spooled


async def _stream(*items):
    for item in items:
        yield item


async def test_spooled_hashes_and_rewinds_and_spills_to_disk() -> None:
    executor = BlockingExecutor(1)
    too_large = ResourceExhausted("too big")
    async with spooled(_stream(b"ab", b"cd" * 10), executor, memory_bytes=4, max_bytes=100, too_large=too_large) as got:
        assert (got.size, got.sha256) == (22, hashlib.sha256(b"ab" + b"cd" * 10).hexdigest())
        assert got.file.read() == b"ab" + b"cd" * 10
        assert got.file._rolled  # past memory_bytes it lives on disk
    with pytest.raises(ResourceExhausted):
        async with spooled(_stream(b"x" * 60, b"y" * 60), executor, memory_bytes=4, max_bytes=100, too_large=too_large):
            pass
    executor.shutdown()


async def test_peek_first_keeps_the_first_message_in_the_stream() -> None:
    first, whole = await peek_first(_stream(1, 2, 3))
    assert first == 1 and [m async for m in whole] == [1, 2, 3]
    empty_first, empty = await peek_first(_stream())
    assert empty_first is None and [m async for m in empty] == []


async def test_chunk_reader_serves_exact_reads_from_a_thread_and_hashes_everything() -> None:
    chunks = [bytes([i]) * 7 for i in range(10)]  # 70 bytes in chunks of 7
    reader = ChunkReader(
        _stream(*chunks), asyncio.get_running_loop(), max_bytes=100, too_large=ResourceExhausted("too big")
    )

    def pull() -> list[bytes]:
        return [reader.read(16), reader.read(16), reader.read(-1), reader.read(16)]

    parts = await asyncio.to_thread(pull)
    assert [len(p) for p in parts] == [16, 16, 38, 0]
    assert b"".join(parts) == b"".join(chunks)
    assert (reader.size, reader.sha256) == (70, hashlib.sha256(b"".join(chunks)).hexdigest())


async def test_chunk_reader_refuses_more_than_max_bytes() -> None:
    reader = ChunkReader(
        _stream(b"x" * 60, b"y" * 60), asyncio.get_running_loop(), max_bytes=100, too_large=ResourceExhausted("big")
    )
    with pytest.raises(ResourceExhausted):
        await asyncio.to_thread(reader.read, 1000)
