"""The background loop of the storage service: probes every enabled endpoint periodically (a
small write-read-delete, a bucket check for read-only credentials) and frees keys claimed by
writers that died long ago."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from imgtag_storage.domain.endpoints import EndpointService
from imgtag_storage.domain.objects import ObjectService
from imgtag_storage.domain.ports import StorageRepository

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(
        self,
        repository: StorageRepository,
        endpoints: EndpointService,
        objects: ObjectService,
        *,
        interval_s: float,
        stale_claim_s: float,
    ) -> None:
        self._repo = repository
        self._endpoints = endpoints
        self._objects = objects
        self._interval_s = interval_s
        self._stale_claim = timedelta(seconds=stale_claim_s)
        self._task: asyncio.Task[None] | None = None

    async def check_all(self) -> None:
        endpoints = [e for e in await self._repo.list_endpoints() if e.enabled]
        await asyncio.gather(*(self._endpoints.probe(e) for e in endpoints))

    async def _run(self) -> None:
        while True:
            try:
                await self.check_all()
                await self._objects.reap_stale_claims(older_than=datetime.now(UTC) - self._stale_claim)
            except Exception:
                log.exception("health round failed")
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="storage-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
