"""Versioned SQL migrations: each ``migrations/NNNN_name.sql`` applied once, in order, each in
its own transaction, recorded in ``schema_migrations``. Concurrent runners serialise on an
advisory lock, so several processes may call ``migrate`` at start."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

from core.errors import StorageError

log = logging.getLogger(__name__)

_LOCK_ID = 0x6865786D  # "hexm"


def available() -> list[tuple[str, str]]:
    """All migrations shipped with the package, as ``(version, sql)`` sorted by version."""
    folder = resources.files(__package__).joinpath("migrations")
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


async def migrate(dsn: str) -> list[str]:
    """Apply every pending migration to the database at ``dsn``; return the versions applied."""
    applied: list[str] = []
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur = await conn.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in await cur.fetchall()}
                for version, sql in available():
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql.encode())
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                        )
                    log.info("migration applied", extra={"version": version})
                    applied.append(version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    except psycopg.Error as exc:
        raise StorageError(f"migration failed: {exc}") from exc
    return applied
