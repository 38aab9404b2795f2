"""``PgDeadLetterStore``: the ``dead_letters`` table (migration ``0005_dead_letters``), the last
resort for dead letters the broker refuses even bounded. One statement per call, idempotent by
key (``ON CONFLICT DO NOTHING``). ``PgDeadLetterArchive`` reads it for ``hexmarket dlq``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.errors import translate_errors
from core.ports.bus import OutgoingMessage
from core.ports.dead_letters import KeptDeadLetter

_KEEP = """
INSERT INTO dead_letters (key, topic, reason, envelope)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[])
ON CONFLICT (key) DO NOTHING
"""


class PgDeadLetterStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def keep(self, topic: str, letters: Sequence[OutgoingMessage]) -> int:
        if not letters:
            return 0
        keys = [m.key or f"unkeyed:{i}" for i, m in enumerate(letters)]
        async with (
            translate_errors(f"keeping {len(letters)} dead letters"),
            self._pool.connection() as conn,
        ):
            cur = await conn.execute(
                _KEEP,
                (
                    keys,
                    [topic] * len(letters),
                    [m.headers.get("reason", "") for m in letters],
                    [m.data for m in letters],
                ),
            )
            return cur.rowcount

    async def count(self) -> int:
        async with translate_errors("counting dead letters"), self._pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM dead_letters")
            row = await cur.fetchone()
        return int(row[0]) if row else 0


class PgDeadLetterArchive:
    """The ``dead_letters`` table read as a ``DeadLetterArchive`` (refs are the rows' keys):
    read-only, oldest ``kept_at`` first."""

    name = "pg"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def scan(self, since: datetime | None = None) -> AsyncIterator[KeptDeadLetter]:
        async with translate_errors("reading dead letters"), self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key, envelope, kept_at FROM dead_letters"
                " WHERE %(since)s::timestamptz IS NULL OR kept_at >= %(since)s"
                " ORDER BY kept_at, key",
                {"since": since},
            )
            rows = await cur.fetchall()
        for key, envelope, kept_at in rows:
            yield KeptDeadLetter(ref=key, data=bytes(envelope), stored_at=kept_at)

    async def get(self, ref: str) -> KeptDeadLetter | None:
        async with translate_errors("reading a dead letter"), self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key, envelope, kept_at FROM dead_letters WHERE key = %s", (ref,)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return KeptDeadLetter(ref=row[0], data=bytes(row[1]), stored_at=row[2])

    async def close(self) -> None:
        """The pool is the container's to close."""
