"""The in-memory log store: the reference model of the log store contract and the demo store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from core.catalog.events import GoodEvent
from core.errors import LogStoreError
from core.ports.audit import NEWEST, LogQuery


def newest_first(event: GoodEvent) -> tuple[datetime, str]:
    return (event.event_time, str(event.event_id))


class MemoryLogStore:
    """Events keyed by ``event_id`` (the first copy wins). ``available = False`` simulates an
    outage: every call raises ``LogStoreError``."""

    def __init__(self) -> None:
        self.available = True
        self._events: dict[uuid.UUID, GoodEvent] = {}
        self.appends = 0
        """Batch writes that stored something (tests check one write per batch)."""

    def _check(self) -> None:
        if not self.available:
            raise LogStoreError("in-memory log store is marked unavailable")

    async def append(self, events: Sequence[GoodEvent]) -> None:
        self._check()
        if not events:
            return
        for event in events:
            self._events.setdefault(event.event_id, event)
        self.appends += 1

    async def query(self, query: LogQuery = NEWEST) -> list[GoodEvent]:
        self._check()
        matching = [
            e
            for e in self._events.values()
            if (query.project_id is None or e.project_id == query.project_id)
            and (query.good_id is None or e.id == query.good_id)
            and (not query.types or e.type in query.types)
            and (query.since is None or e.event_time >= query.since)
            and (query.until is None or e.event_time < query.until)
            and (query.before is None or newest_first(e) < query.before.key())
        ]
        matching.sort(key=newest_first, reverse=True)
        return matching[: query.limit]

    async def ping(self) -> None:
        self._check()

    async def close(self) -> None:
        return None
