"""``PgDeadLetterStore``: the ``dead_letters`` table (migration ``0005_dead_letters``), the last
resort for dead letters the broker refuses even bounded. One statement per call, idempotent by
key (``ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.errors import StorageError
from core.ports.bus import OutgoingMessage

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
        try:
            async with self._pool.connection() as conn:
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
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"keeping {len(letters)} dead letters failed: {exc}") from exc

    async def count(self) -> int:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) FROM dead_letters")
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"counting dead letters failed: {exc}") from exc
        return int(row[0]) if row else 0
