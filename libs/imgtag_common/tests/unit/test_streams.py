import hashlib

import pytest

from imgtag_common.blocking import BlockingExecutor
from imgtag_common.errors import ResourceExhausted
from imgtag_common.streams import peek_first, spooled


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
