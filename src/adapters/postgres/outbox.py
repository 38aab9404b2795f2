"""The relay side of the Postgres ``outbox`` table (migration ``0002_outbox``).

``claim`` locks the oldest unsent rows with ``FOR UPDATE SKIP LOCKED`` inside a transaction
that lives as long as the claim: several relays share the table without publishing a row
twice concurrently, and a relay that dies releases its rows with its connection. ``mark_sent``
sets ``sent_at`` in that same transaction, committed when the claim exits cleanly.

``prune_sent`` deletes the oldest sent rows past their retention through ``outbox_sent_idx``
(migration ``0006``), a small batch per call, so sent rows do not accumulate forever.

``wait_for_new`` listens on ``hexmarket_outbox`` (the table's insert trigger notifies at commit)
over one dedicated autocommit connection; if that connection cannot be had it degrades to
waiting the timeout (a short poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import attrs
import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.errors import translate_errors
from core.ports.audit import OutboxBacklog, PendingEvent

log = logging.getLogger(__name__)

CHANNEL = "hexmarket_outbox"

_CLAIM = """
SELECT id, event_id, topic, key, payload, traceparent FROM outbox
WHERE sent_at IS NULL
ORDER BY id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

_PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => %s)
    ORDER BY sent_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""

# the oldest pending record by id through ``outbox_pending_idx``; ids follow insertion
_BACKLOG = """
SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL),
       (SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox
        WHERE sent_at IS NULL ORDER BY id LIMIT 1)
"""


@attrs.define
class PgClaimedBatch:
    records: Sequence[PendingEvent]
    _conn: psycopg.AsyncConnection[tuple[object, ...]]

    async def mark_sent(self) -> None:
        ids = [r.id for r in self.records]
        if ids:
            await self._conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", (ids,))


class PgOutboxRelay:
    def __init__(self, pool: AsyncConnectionPool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[PgClaimedBatch]:
        async with (
            translate_errors("outbox claim"),
            self._pool.connection() as conn,
            conn.transaction(),
        ):
            cur = await conn.execute(_CLAIM, (limit,))
            rows = await cur.fetchall()
            yield PgClaimedBatch(
                [
                    PendingEvent(
                        id=int(row[0]),
                        event_id=row[1],
                        topic=str(row[2]),
                        key=str(row[3]),
                        payload=bytes(row[4]),
                        traceparent=None if row[5] is None else str(row[5]),
                    )
                    for row in rows
                ],
                conn,
            )

    async def prune_sent(self, older_than: float, limit: int) -> int:
        async with translate_errors("outbox prune"), self._pool.connection() as conn:
            cur = await conn.execute(_PRUNE, (older_than, limit))
            return cur.rowcount

    async def backlog(self) -> OutboxBacklog:
        async with translate_errors("outbox backlog read"), self._pool.connection() as conn:
            cur = await conn.execute(_BACKLOG)
            row = await cur.fetchone()
        assert row is not None
        return OutboxBacklog(
            pending=int(row[0]), oldest_age=None if row[1] is None else float(row[1])
        )

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._listener is None or self._listener.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=3
            )
            await conn.execute(f"LISTEN {CHANNEL}")
            self._listener = conn
        return self._listener

    async def wait_for_new(self, timeout: float) -> None:  # noqa: ASYNC109
        try:
            conn = await self._listen()
            async for _ in conn.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.Error as exc:
            log.info("outbox listener unavailable (%s); polling", exc)
            await self._drop_listener()
            await asyncio.sleep(timeout)

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def close(self) -> None:
        await self._drop_listener()
