"""Counting failed attempts (logins, API keys) per client address or login, in memory.

A sliding window per key: once `limit` failures fall inside `window_s`, further attempts are
refused with RESOURCE_EXHAUSTED (HTTP 429) until the oldest failure leaves the window. Counts
live in this process only: behind several auth replicas each keeps its own."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from imgtag_common.errors import ResourceExhausted

_MAX_TRACKED_KEYS = 100_000


class FailureLimiter:
    def __init__(self, *, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        horizon = self._clock() - self._window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, key: str) -> None:
        times = self._recent(key)
        if len(times) >= self._limit:
            retry_s = int(times[0] + self._window_s - self._clock()) + 1
            raise ResourceExhausted(
                f"too many failed attempts; try again in {retry_s} s",
                reason="TOO_MANY_ATTEMPTS",
                metadata={"retry_after_s": str(retry_s)},
            )

    def record(self, key: str) -> None:
        times = self._recent(key)
        times.append(self._clock())
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > _MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
