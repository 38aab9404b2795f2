"""Pruning sent outbox rows on real PostgreSQL: only sent rows past their retention go, oldest
first, a bounded batch per call."""

from __future__ import annotations

import psycopg

from adapters.postgres.outbox import PgOutboxRelay
from tests.integration.test_audit_outbox_pg import add_rows, pending, pool, relay

__all__ = ["pool", "relay"]  # fixtures


async def test_prune_deletes_only_sent_rows_past_their_retention(
    relay: PgOutboxRelay, pg_url: str
) -> None:
    ids = await add_rows(pg_url, 7)
    async with relay.claim(5) as batch:
        await batch.mark_sent()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE event_id = ANY(%s)",
            (ids[:3],),
        )
        await conn.commit()
    assert await relay.prune_sent(3600, 2) == 2  # bounded batch, oldest sent first
    assert await relay.prune_sent(3600, 100) == 1  # the third old one; recent sent rows stay
    assert await relay.prune_sent(3600, 100) == 0
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute("SELECT event_id FROM outbox ORDER BY id")
        left = [row[0] for row in await cur.fetchall()]
    assert left == ids[3:]
    assert await pending(pg_url) == 2
