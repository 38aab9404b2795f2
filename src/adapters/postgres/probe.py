"""A short check that a PostgreSQL server answers, on a connection of its own: what a process
runs before it starts (the pools it will hold do not exist yet)."""

from __future__ import annotations

import psycopg

from core.errors import StorageError


async def probe(url: str, within: float) -> None:
    """Return if the server at ``url`` accepts a connection and answers ``SELECT 1`` (what the
    stores' ``ping`` asks) within about ``within`` seconds, else raise ``StorageError`` with
    the server's reason (a refused password, a missing database)."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(within)))
        async with conn:
            await conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise StorageError(" ".join(str(exc).split())) from exc
