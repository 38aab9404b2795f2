"""The relay side of the in-memory catalog store's outbox (``catalog_store=memory``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import attrs

from adapters.memory.catalog import MemoryCatalogStore
from core.ports.audit import OutboxBacklog, PendingEvent


@attrs.define
class MemoryClaimedBatch:
    records: Sequence[PendingEvent]
    marked: bool = False

    async def mark_sent(self) -> None:
        self.marked = True


class MemoryOutboxRelay:
    """Claims skip records another claim of this relay holds, like ``SKIP LOCKED``."""

    def __init__(self, store: MemoryCatalogStore) -> None:
        self._store = store
        self._held: set[int] = set()

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[MemoryClaimedBatch]:
        pending = [
            r for r in self._store.outbox_records(pending_only=True) if r.id not in self._held
        ][:limit]
        ids = {r.id for r in pending}
        self._held |= ids
        batch = MemoryClaimedBatch(pending)  # frozen records: safe to hand out as they are
        try:
            yield batch
            if batch.marked:
                # inside a unit of work (left without commit): an open unit of work holds a
                # copy of the state and would overwrite the marks when it commits
                async with self._store.unit_of_work():
                    self._store.mark_outbox_sent(sorted(ids))
        finally:
            self._held -= ids

    async def prune_sent(self, older_than: float, limit: int) -> int:
        async with self._store.unit_of_work():  # as for the marks: an open one would undo it
            return self._store.prune_outbox_sent(older_than, limit)

    async def backlog(self) -> OutboxBacklog:
        pending = self._store.outbox_records(pending_only=True)
        oldest = min((r.created_at for r in pending), default=None)
        age = None if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        return OutboxBacklog(pending=len(pending), oldest_age=age)

    async def wait_for_new(self, timeout: float) -> None:  # noqa: ASYNC109
        signal = self._store.outbox_signal
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), timeout)
        signal.clear()

    async def close(self) -> None:
        return None
