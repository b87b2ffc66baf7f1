"""Micro-batching: concurrent callers of one model share a forward pass.

An item arriving while the model is idle opens a batch that runs when it holds `max_batch`
items or `window_s` after it opened, whichever comes first. Items arriving while a batch runs
wait for it and then go together, at once: under load, batches fill by themselves (what Triton
calls dynamic batching), and an idle model adds at most the window to a lone request. Each
caller gets its own row of the result. A failing batch fails each of its callers with the same
error; later batches are unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int,
        window_s: float,
        concurrency: int = 1,
    ) -> None:
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._window_s = window_s
        self._concurrency = concurrency
        self._running = 0
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self.batches_run = 0  # forward passes so far (tests, benchmarks)
        self.items_run = 0

    async def submit(self, item: T) -> R:
        """The result for one item, computed in a batch with whatever else arrives meanwhile."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._running < self._concurrency:
            if len(self._pending) >= self._max_batch:
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(self._window_s, self._start)
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Several items from one caller (a batch RPC): queued together and started at once (no
        window: the caller's batch is already here), so max_batch items are one forward pass."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._pending.extend(zip(items, futures, strict=True))
        if self._running < self._concurrency:
            self._start()
        return list(await asyncio.gather(*futures))

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and self._running < self._concurrency:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if live:
                await self._run_live(live)
        finally:
            self._running -= 1
            if self._pending:
                self._start()  # what queued meanwhile has waited long enough: go now

    async def _run_live(self, live: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches_run += 1
        self.items_run += len(live)
        try:
            results = await self._run_batch([item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"batch of {len(live)} gave {len(results)} results")
        except Exception as error:  # handed to every caller of this batch
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():
                future.set_result(result)
