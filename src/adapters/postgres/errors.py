"""Driver errors leave the PostgreSQL adapters as the ports' errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg

from core.errors import StorageConflict, StorageError

# deadlock_detected, serialization_failure: the server aborted the transaction to break a
# conflict; the same transaction run again can succeed.
_CONFLICTS = frozenset({"40P01", "40001"})


@asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """Turn driver and pool errors (``PoolTimeout`` is a ``psycopg.OperationalError``) into
    ``StorageError("<what> failed: ...")``, ``StorageConflict`` for a conflict."""
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate in _CONFLICTS:
            raise StorageConflict(f"{what} failed: {exc}") from exc
        raise StorageError(f"{what} failed: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"{what} failed: {exc}") from exc
