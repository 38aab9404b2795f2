"""The audit trail's ports: the log store the events end in, and the outbox the relay drains.

Audit events are ``core.catalog.events.GoodEvent``: the state of one good right after one
change, identified by ``event_id`` from the outbox all the way to the log store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from core.catalog.events import GoodEvent

MAX_QUERY_LIMIT = 1000


@attrs.frozen(kw_only=True)
class LogCursor:
    """Where a page of events ended: its last event's ``event_time`` and ``event_id``. The
    next page holds the events after it in newest-first order (keyset paging)."""

    event_time: datetime
    event_id: uuid.UUID

    @classmethod
    def after(cls, event: GoodEvent) -> LogCursor:
        return cls(event_time=event.event_time, event_id=event.event_id)

    def key(self) -> tuple[datetime, str]:
        """The newest-first sort key: events with a smaller key come after the cursor."""
        return (self.event_time, str(self.event_id))


def _tuple(types: Iterable[str]) -> tuple[str, ...]:
    return tuple(types)


@attrs.frozen(kw_only=True)
class LogQuery:
    """A page of ``LogStore.query``: at most ``limit`` (1..``MAX_QUERY_LIMIT``) events matching
    every given filter, newest first: by ``event_time`` descending, ties by ``str(event_id)``
    descending. ``types``: only these event types (empty: all); ``since`` inclusive, ``until``
    exclusive; ``before``: only events after that cursor in this order (the next page)."""

    project_id: int | None = None
    good_id: int | None = None
    types: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    since: datetime | None = None
    until: datetime | None = None
    before: LogCursor | None = None
    limit: int = 100

    def next_page(self, last: GoodEvent) -> LogQuery:
        """The same query for the page after the one that ended with ``last``."""
        return attrs.evolve(self, before=LogCursor.after(last))


#: The newest events, unfiltered: ``LogStore.query()``.
NEWEST = LogQuery()


@runtime_checkable  # the HTTP layer checks injected dependencies against it
class LogStore(Protocol):
    async def append(self, events: Sequence[GoodEvent]) -> None:
        """Store ``events`` in one batch write: all of them or (on ``LogStoreError``) none
        visible as a half batch the caller cannot repair by retrying. Idempotent by
        ``event_id``: an event appended again, in the same batch or any later one, is never
        visible twice. An empty batch is a no-op."""
        ...

    async def query(self, query: LogQuery = NEWEST) -> list[GoodEvent]:
        """The events ``query`` asks for (see ``LogQuery``), newest first. Each event appears
        once. Raises ``LogStoreError`` when the store is unreachable."""
        ...

    async def ping(self) -> None:
        """Return if the store is reachable, else raise ``LogStoreError``."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...


@attrs.frozen(kw_only=True)
class PendingEvent:
    """An outbox record waiting for the broker: ``payload`` goes to ``topic`` verbatim, with
    ``key`` (the event id) as the broker's de-duplication id and partitioning key.
    ``traceparent``: the W3C trace context of the change that recorded it (``None`` when that
    change was not traced), continued by the relay's publish."""

    id: int
    event_id: uuid.UUID
    topic: str
    key: str
    payload: bytes
    traceparent: str | None = None


@attrs.frozen(kw_only=True, slots=True)
class OutboxBacklog:
    """Unsent outbox records: how many, and the age in seconds of the oldest (``None``: none)."""

    pending: int
    oldest_age: float | None


class ClaimedBatch(Protocol):
    records: Sequence[PendingEvent]

    async def mark_sent(self) -> None:
        """Mark every record of the batch sent; durable when the claim's context exits
        without an exception. Call only after the broker acknowledged all of them."""
        ...


class OutboxRelayStore(Protocol):
    def claim(self, limit: int) -> AbstractAsyncContextManager[ClaimedBatch]:
        """Hold up to ``limit`` unsent records, oldest first, skipping records other relays
        hold (``FOR UPDATE SKIP LOCKED``), until the context exits. Records not marked sent
        (an exception, a crash, no ``mark_sent``) stay unsent and are claimed again later.
        Raises ``StorageError`` when the database is unreachable."""
        ...

    async def prune_sent(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` records sent more than ``older_than`` seconds ago, oldest
        first, in one short transaction; returns how many. Unsent records are never touched.
        Raises ``StorageError`` when the database is unreachable."""
        ...

    async def backlog(self) -> OutboxBacklog:
        """The unsent records now (one short read). Raises ``StorageError`` when the database
        is unreachable."""
        ...

    async def wait_for_new(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when records may have been added since the last claim, or after ``timeout``
        seconds, whichever comes first. Spurious wake-ups are allowed; missed ones are not
        worse than ``timeout``."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...
