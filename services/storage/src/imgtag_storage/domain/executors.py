"""The service's blocking work, split so that one kind cannot starve another: uploads hold a
write thread for as long as their stream lasts, downloads need read threads at once, and
replication, scrubs and health probes run in their own pool."""

from __future__ import annotations

from dataclasses import dataclass

from imgtag_common.blocking import BlockingExecutor


@dataclass(frozen=True)
class Executors:
    reads: BlockingExecutor
    writes: BlockingExecutor
    background: BlockingExecutor

    def shutdown(self) -> None:
        for pool in (self.reads, self.writes, self.background):
            pool.shutdown()
