"""Micro-batching: concurrent callers share forward passes and get what they would alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from imgtag_inference.domain.batching import MicroBatcher
from imgtag_inference.domain.engine import ImageRequest

from .conftest import photo


async def test_concurrent_callers_share_forward_passes_with_the_same_results(engine) -> None:
    names = ["chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png", "astronaut.png"] * 2
    alone = []
    for name in names[:6]:
        (embedding,) = await engine.embed_images([ImageRequest(data=photo(name))])
        alone.append(embedding.values)
    batcher = engine.batchers.classifier
    before_batches, before_items = batcher.batches_run, batcher.items_run
    together = await asyncio.gather(*(engine.embed_images([ImageRequest(data=photo(n))]) for n in names))
    passes = batcher.batches_run - before_batches
    assert batcher.items_run - before_items == len(names)
    assert passes < len(names) / 2, passes
    for i, (embedding,) in enumerate(together):
        np.testing.assert_allclose(embedding.values, alone[i % 6], rtol=1e-4, atol=1e-5)


async def test_a_batch_never_exceeds_max_batch_and_waits_at_most_the_window() -> None:
    sizes = []

    async def run(items):
        sizes.append(len(items))
        return [i * 2 for i in items]

    batcher = MicroBatcher(run, max_batch=4, window_s=0.01)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(10))) == [i * 2 for i in range(10)]
    assert sizes == [4, 4, 2]
    assert await batcher.submit(7) == 14 and sizes[-1] == 1  # alone: runs after the window


async def test_a_failing_batch_fails_its_callers_and_the_next_batch_works() -> None:
    calls = 0

    async def run(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return items

    batcher = MicroBatcher(run, max_batch=8, window_s=0.005)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await batcher.submit(3) == 3


async def test_items_arriving_while_a_batch_runs_go_together_in_the_next() -> None:
    sizes = []
    release = asyncio.Event()

    async def run(items):
        sizes.append(len(items))
        if len(sizes) == 1:
            await release.wait()
        return items

    batcher = MicroBatcher(run, max_batch=16, window_s=0)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first batch is running now
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(first, *later) == list(range(6))
    assert sizes == [1, 5]


async def test_text_batches_from_one_call_are_one_forward_pass(engine) -> None:
    batcher = engine.batchers.text
    before = batcher.batches_run
    embeddings = await engine.embed_texts([f"text {i}" for i in range(20)])
    assert len(embeddings) == 20 and batcher.batches_run - before == 1


@pytest.mark.parametrize("window_ms", [0])
async def test_a_zero_window_still_batches_what_arrived_together(window_ms) -> None:
    sizes = []

    async def run(items):
        sizes.append(len(items))
        return items

    batcher = MicroBatcher(run, max_batch=16, window_s=window_ms / 1000)
    await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert sizes == [5]
