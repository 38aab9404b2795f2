"""The PostgreSQL catalog store: plain SQL over a psycopg 3 async connection pool.

Priorities are unique by a deferred UNIQUE constraint. The locking protocol (docs/api.md,
"Concurrent writes") cannot deadlock: a create takes the transaction-scoped priority lock
shared and draws its priority from a sequence, so creates never wait for each other; a
reprioritize takes it exclusively, then locks every row it will write in one
``ORDER BY id FOR UPDATE`` before writing any, and raises the sequence past its new highest
priority; edits lock their one row with ``FOR UPDATE``. Driver errors leave this module as
``StorageError`` (``StorageConflict`` for a deadlock or serialization failure, which the use
cases retry)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self

import psycopg
import psycopg_pool
from psycopg import AsyncConnection

from adapters.postgres.errors import translate_errors
from core import tracing
from core.catalog.events import GoodEvent
from core.catalog.models import Good, GoodsPage, Project
from core.errors import StorageError

PRIORITY_LOCK = 0x676F6F64  # "good": the advisory lock of priority changes
PRIORITY_SEQUENCE = "goods_priority_seq"
_GOOD_COLUMNS = "id, project_id, name, description, priority, removed, created_at"
_BIGINT_MAX = 2**63 - 1
_DB = {"db.system.name": "postgresql"}
_NOT_TRACED = tracing.span("")  # what a unit of work holds before it is entered


def _good(row: Sequence[Any]) -> Good:
    return Good(
        id=row[0],
        project_id=row[1],
        name=row[2],
        description=row[3],
        priority=row[4],
        removed=row[5],
        created_at=row[6],
    )


class PgCatalogStore:
    """Implements ``core.ports.catalog.CatalogStore``. ``topic`` is written on every outbox
    row (the relay publishes each row to its topic)."""

    def __init__(
        self,
        *,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        topic: str = "goods.events",
        acquire_timeout: float = 10.0,
    ) -> None:
        self.pool = pool
        self.topic = topic
        self.acquire_timeout = acquire_timeout

    async def ping(self) -> None:
        try:
            async with self.pool.connection(timeout=self.acquire_timeout) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(f"PostgreSQL not answering: {exc}") from exc

    def unit_of_work(self) -> PgCatalogUnitOfWork:
        return PgCatalogUnitOfWork(self)


class PgCatalogUnitOfWork:
    def __init__(self, store: PgCatalogStore) -> None:
        self._store = store
        self._conn: AsyncConnection[Any] | None = None
        self._committed = False
        self.goods = _PgGoods(self)
        self.projects = _PgProjects(self)
        self.outbox = _PgOutbox(self)
        self._span: AbstractContextManager[tracing.Span] = _NOT_TRACED

    @property
    def conn(self) -> AsyncConnection[Any]:
        if self._conn is None:
            raise StorageError("unit of work used outside its `async with` block")
        return self._conn

    async def __aenter__(self) -> Self:
        # the transaction's span, current until ``__aexit__`` (a no-op when not tracing)
        self._span = tracing.span("catalog transaction", kind="client", attributes=_DB)
        self._span.__enter__()
        try:
            async with translate_errors("getting a connection"):
                self._conn = await self._store.pool.getconn(timeout=self._store.acquire_timeout)
        except BaseException as exc:
            self._span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken:
                await conn.rollback()
        except psycopg.Error:
            pass  # the pool discards a connection it cannot reset
        finally:
            await self._store.pool.putconn(conn)
            self._span.__exit__(exc_type, exc, tb)

    async def commit(self) -> None:
        async with translate_errors("commit"):
            await self.conn.commit()
        self._committed = True

    async def fetchone(self, what: str, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        async with translate_errors(what):
            cur = await self.conn.execute(sql, params)
            return await cur.fetchone()

    async def fetchall(self, what: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with translate_errors(what):
            cur = await self.conn.execute(sql, params)
            return await cur.fetchall()


class _PgGoods:
    def __init__(self, uow: PgCatalogUnitOfWork) -> None:
        self._uow = uow

    async def add(self, *, project_id: int, name: str, description: str) -> Good | None:
        # One statement: the shared priority lock (the materialized CTE is read before any
        # row is produced), the project's existence, then nextval in the row's projection.
        # Shared: creates never wait for each other, only for a reprioritize.
        row = await self._uow.fetchone(
            "adding a good",
            "WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%(lock)s))"
            " INSERT INTO goods (project_id, name, description, priority)"
            f" SELECT p.id, %(name)s, %(description)s, nextval('{PRIORITY_SEQUENCE}')"
            " FROM locked, projects p WHERE p.id = %(project)s"
            f" RETURNING {_GOOD_COLUMNS}",
            {
                "lock": PRIORITY_LOCK,
                "name": name,
                "description": description,
                "project": project_id,
            },
        )
        return None if row is None else _good(row)

    async def get_for_update(self, good_id: int, project_id: int) -> Good | None:
        row = await self._uow.fetchone(
            "locking a good",
            f"SELECT {_GOOD_COLUMNS} FROM goods WHERE id = %s AND project_id = %s FOR UPDATE",
            (good_id, project_id),
        )
        return None if row is None else _good(row)

    async def save(self, good: Good) -> Good:
        row = await self._uow.fetchone(
            "saving a good",
            "UPDATE goods SET name = %s, description = %s, removed = %s"
            f" WHERE id = %s AND project_id = %s RETURNING {_GOOD_COLUMNS}",
            (good.name, good.description, good.removed, good.id, good.project_id),
        )
        if row is None:
            raise StorageError(f"good {good.id} of project {good.project_id} does not exist")
        return _good(row)

    async def lock_for_reprioritize(
        self, good_id: int, project_id: int, new_priority: int
    ) -> Good | None:
        await self._uow.fetchone(
            "locking priorities", "SELECT pg_advisory_xact_lock(%s)", (PRIORITY_LOCK,)
        )
        # Every row the shift will write, locked in id order before any is written: a
        # transaction this waits for holds no lock this one has, and none of its writes can
        # collide with ours in the deferred unique check (docs/api.md, "Concurrent writes").
        # The rows come back as locked (their newest version), not as of the snapshot;
        # MATERIALIZED: the outer filter must not be pushed into the locking scan.
        row = await self._uow.fetchone(
            "locking goods to reprioritize",
            f"WITH locked AS MATERIALIZED (SELECT {_GOOD_COLUMNS} FROM goods"
            " WHERE (id = %(id)s AND project_id = %(project)s) OR priority >= %(new)s"
            " ORDER BY id FOR UPDATE)"
            f" SELECT {_GOOD_COLUMNS} FROM locked WHERE id = %(id)s AND project_id = %(project)s",
            {"id": good_id, "project": project_id, "new": new_priority},
        )
        return None if row is None else _good(row)

    async def reprioritize(self, good_id: int, project_id: int, new_priority: int) -> list[Good]:
        # The rows it writes are those ``lock_for_reprioritize`` locked: no good is added
        # and no priority changes while this transaction holds the priority lock.
        target = await self._uow.fetchone(
            "reading a good",
            "SELECT priority FROM goods WHERE id = %s AND project_id = %s",
            (good_id, project_id),
        )
        if target is None:
            raise StorageError(f"good {good_id} of project {project_id} does not exist")
        if target[0] == new_priority:
            return []
        rows = await self._uow.fetchall(
            "reprioritizing",
            "UPDATE goods SET priority = CASE WHEN id = %(id)s AND project_id = %(project)s"
            " THEN %(new)s ELSE priority + 1 END"
            " WHERE (id = %(id)s AND project_id = %(project)s) OR priority >= %(new)s"
            f" RETURNING {_GOOD_COLUMNS}",
            {"id": good_id, "project": project_id, "new": new_priority},
        )
        changed = sorted((_good(r) for r in rows), key=lambda g: (g.priority, g.id))
        # The next create must go after the new highest priority. Not rolled back with the
        # transaction (a sequence never is): a reprioritize that then fails leaves a gap.
        await self._uow.fetchone(
            "raising the priority counter",
            f"SELECT setval('{PRIORITY_SEQUENCE}', greatest(%s, last_value))"
            f" FROM {PRIORITY_SEQUENCE}",
            (changed[-1].priority,),
        )
        return changed

    async def page(self, *, limit: int, offset: int) -> GoodsPage:
        # One statement, so the counts and the page come from one snapshot.
        rows = await self._uow.fetchall(
            "listing goods",
            "WITH counts AS (SELECT count(*) AS total, count(*) FILTER (WHERE removed) AS removed"
            " FROM goods)"
            f" SELECT c.total, c.removed, p.* FROM counts c LEFT JOIN LATERAL"
            f" (SELECT {_GOOD_COLUMNS} FROM goods ORDER BY priority, id LIMIT %s OFFSET %s) p"
            " ON true",
            # OFFSET is a bigint: a larger position is past any table's end all the same.
            (limit, min(offset - 1, _BIGINT_MAX)),
        )
        total, removed = (rows[0][0], rows[0][1]) if rows else (0, 0)
        goods = tuple(_good(r[2:]) for r in rows if r[2] is not None)
        return GoodsPage(total=total, removed=removed, limit=limit, offset=offset, goods=goods)


class _PgProjects:
    def __init__(self, uow: PgCatalogUnitOfWork) -> None:
        self._uow = uow

    async def get(self, project_id: int) -> Project | None:
        row = await self._uow.fetchone(
            "reading a project",
            "SELECT id, name, created_at FROM projects WHERE id = %s",
            (project_id,),
        )
        return None if row is None else Project(id=row[0], name=row[1], created_at=row[2])

    async def add(self, *, name: str) -> Project:
        row = await self._uow.fetchone(
            "adding a project",
            "INSERT INTO projects (name) VALUES (%s) RETURNING id, name, created_at",
            (name,),
        )
        assert row is not None
        return Project(id=row[0], name=row[1], created_at=row[2])

    async def list(self) -> list[Project]:
        rows = await self._uow.fetchall(
            "listing projects", "SELECT id, name, created_at FROM projects ORDER BY id"
        )
        return [Project(id=r[0], name=r[1], created_at=r[2]) for r in rows]


class _PgOutbox:
    def __init__(self, uow: PgCatalogUnitOfWork) -> None:
        self._uow = uow

    async def add(self, events: Sequence[GoodEvent]) -> None:
        if not events:
            return
        topic = self._uow._store.topic
        traceparent = tracing.traceparent()
        async with translate_errors("adding outbox events"), self._uow.conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO outbox (event_id, topic, key, payload, traceparent)"
                " SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bytea[],"
                " %b::text[])",
                (
                    [e.event_id for e in events],
                    [topic] * len(events),
                    [str(e.event_id) for e in events],
                    [e.to_json() for e in events],
                    [traceparent] * len(events),
                ),
            )
