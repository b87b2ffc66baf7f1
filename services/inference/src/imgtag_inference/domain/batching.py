"""Micro-batching: concurrent callers of one model share a forward pass.

The first item to arrive opens a batch; the batch runs when it holds `max_batch` items or
`window_s` after it opened, whichever comes first. Each caller gets its own row of the result.
A failing batch fails each of its callers with the same error; later batches are unaffected."""

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
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._window_s = window_s
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
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window_s, self._flush)
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Several items from one caller (a batch RPC): they are queued together, so a request
        of max_batch items is one forward pass."""
        return list(await asyncio.gather(*(self.submit(item) for item in items)))

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        live = [(item, future) for item, future in batch if not future.cancelled()]
        if not live:
            return
        self.batches_run += 1
        self.items_run += len(live)
        try:
            results = await self._run_batch([item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"batch of {len(live)} gave {len(results)} results")
        except BaseException as error:
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():
                future.set_result(result)
