"""What the stateful catalog tests on PostgreSQL share: a state machine's rules are
synchronous, so each test runs the coroutines on an event loop of its own (``OwnLoop``), and
every example starts from an empty catalog (``reset_catalog``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import attrs
import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrate import migrate


@attrs.frozen
class OwnLoop:
    """A new event loop and a pool of the migrated database opened on it; ``close`` both."""

    loop: asyncio.AbstractEventLoop
    pool: AsyncConnectionPool[Any]

    @classmethod
    def open(cls, pg_url: str, *, min_size: int, max_size: int) -> OwnLoop:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(migrate(pg_url))
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            pg_url, min_size=min_size, max_size=max_size, open=False
        )
        loop.run_until_complete(pool.open(wait=True))
        return cls(loop, pool)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """``coroutine`` run to its end on this loop: its result."""
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.pool.close())
        self.loop.close()


def reset_catalog(pg_url: str) -> None:
    """No goods, no outbox, only project 1, and the next project id 2."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE goods, outbox RESTART IDENTITY")
        conn.execute("DELETE FROM projects WHERE id > 1")
        conn.execute("SELECT setval('projects_id_seq', 1)")
