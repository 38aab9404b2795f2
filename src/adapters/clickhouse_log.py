"""The audit log store on ClickHouse (clickhouse-connect): a server over HTTP in production,
the embedded engine (``chdb:///path``) as the single-process default.

The table is a ``ReplacingMergeTree`` ordered by ``(ProjectId, EventTime, EventId)``: a
redelivered event has the same sorting key as its first copy, so merges collapse them, and
queries read ``FINAL`` so a copy not merged yet is never visible either. The table is created
at start (``CREATE ... IF NOT EXISTS``) in ``database``; both are the adapter's to own.

clickhouse-connect is blocking: every call runs in a worker thread, one at a time per store
(the embedded engine is one per process and not meant for concurrent sessions).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from core import tracing
from core.catalog.events import GoodEvent
from core.errors import LogStoreError
from core.ports.audit import NEWEST, LogQuery

T = TypeVar("T")

COLUMNS = (
    "EventId",
    "Type",
    "Id",
    "ProjectId",
    "Name",
    "Description",
    "Priority",
    "Removed",
    "EventTime",
    "ChangeId",
    "TargetId",
    "BeforePriority",
    "BeforeName",
    "BeforeDescription",
)

#: The types of ``COLUMNS`` as ``_DDL`` declares them (kept side by side: an insert states them).
COLUMN_TYPES = (
    "UUID",
    "LowCardinality(String)",
    "Int64",
    "Int64",
    "String",
    "String",
    "Int64",
    "Bool",
    "DateTime64(6, 'UTC')",
    "UUID",
    "Int64",
    "Nullable(Int64)",
    "Nullable(String)",
    "Nullable(String)",
)

#: Columns added after the first release, with what rows written before them read as
#: (their own event is their change; no "before" known). Added to an existing table at start.
_ADDED_COLUMNS = (
    "ChangeId UUID DEFAULT EventId",
    "TargetId Int64 DEFAULT Id",
    "BeforePriority Nullable(Int64)",
    "BeforeName Nullable(String)",
    "BeforeDescription Nullable(String)",
)

_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    EventId     UUID,
    Type        LowCardinality(String),
    Id          Int64,
    ProjectId   Int64,
    Name        String,
    Description String,
    Priority    Int64,
    Removed     Bool,
    EventTime   DateTime64(6, 'UTC'),
    ChangeId    UUID DEFAULT EventId,
    TargetId    Int64 DEFAULT Id,
    BeforePriority Nullable(Int64),
    BeforeName  Nullable(String),
    BeforeDescription Nullable(String),
    INDEX idx_id Id TYPE minmax GRANULARITY 4,
    INDEX idx_project ProjectId TYPE set(1000) GRANULARITY 4,
    INDEX idx_name Name TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY (ProjectId, EventTime, EventId)
"""


class ClickHouseLogStore:
    def __init__(
        self, url: str, *, database: str = "hexmarket", table: str = "goods_events"
    ) -> None:
        if not database.replace("_", "").isalnum() or not table.replace("_", "").isalnum():
            raise ValueError("database and table names must be alphanumeric")
        self._url = url
        self._database = database
        self._table = f"`{database}`.`{table}`"
        self._client: Any = None
        self._lock = threading.Lock()

    async def _call(self, fn: Callable[[Any], T]) -> T:
        try:
            return await asyncio.to_thread(self._locked, fn)
        except (ClickHouseError, OSError) as exc:
            raise LogStoreError(f"ClickHouse failed: {exc}") from exc

    def _locked(self, fn: Callable[[Any], T]) -> T:
        # a thread lock, not an asyncio one: the store may be shared by event loops in
        # different threads (an HTTP test client's loop and the workers' loop, say)
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return fn(self._client)

    def _connect(self) -> Any:
        client = clickhouse_connect.get_client(dsn=self._url)
        client.command(f"CREATE DATABASE IF NOT EXISTS `{self._database}`")
        client.command(_DDL.format(table=self._table))
        for column in _ADDED_COLUMNS:  # a table of an earlier version gets the new columns
            client.command(f"ALTER TABLE {self._table} ADD COLUMN IF NOT EXISTS {column}")
        return client

    async def start(self) -> None:
        """Connect and create the table (optional: the first call does it)."""
        await self._call(lambda client: None)

    async def append(self, events: Sequence[GoodEvent]) -> None:
        if not events:
            return
        # column-oriented with the types given: no per-row lists to transpose, and no
        # DESCRIBE TABLE round trip before each insert
        columns = [
            [e.event_id for e in events],
            [e.type for e in events],
            [e.id for e in events],
            [e.project_id for e in events],
            [e.name for e in events],
            [e.description for e in events],
            [e.priority for e in events],
            [e.removed for e in events],
            [e.event_time.astimezone(UTC) for e in events],
            [e.change_id for e in events],
            [e.target_id for e in events],
            [e.before_priority for e in events],
            [e.before_name for e in events],
            [e.before_description for e in events],
        ]
        with tracing.span(
            "clickhouse insert",
            kind="client",
            attributes={
                "db.system.name": "clickhouse",
                "db.operation.name": "INSERT",
                "db.collection.name": self._table,
                "db.operation.batch.size": len(events),
            },
        ):
            await self._call(
                lambda client: client.insert(
                    self._table,
                    columns,
                    column_names=COLUMNS,
                    column_type_names=COLUMN_TYPES,
                    column_oriented=True,
                )
            )

    async def query(self, query: LogQuery = NEWEST) -> list[GoodEvent]:
        where: list[str] = []
        params: dict[str, Any] = {"limit": int(query.limit)}
        if query.project_id is not None:
            where.append("ProjectId = {project_id:Int64}")
            params["project_id"] = query.project_id
        if query.good_id is not None:
            where.append("Id = {good_id:Int64}")
            params["good_id"] = query.good_id
        if query.types:
            where.append("Type IN {types:Array(String)}")
            params["types"] = list(query.types)
        # instants travel as integer microseconds: exact, whatever the driver does with datetimes
        if query.since is not None:
            where.append("EventTime >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')")
            params["since"] = _micros(query.since)
        if query.until is not None:
            where.append("EventTime < fromUnixTimestamp64Micro({until:Int64}, 'UTC')")
            params["until"] = _micros(query.until)
        if query.before is not None:
            where.append(
                "(EventTime, toString(EventId)) < "
                "(fromUnixTimestamp64Micro({before_time:Int64}, 'UTC'), {before_id:String})"
            )
            params["before_time"] = _micros(query.before.event_time)
            params["before_id"] = str(query.before.event_id)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {self._table} FINAL"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY EventTime DESC, toString(EventId) DESC LIMIT {limit:UInt32}"
        )
        rows = await self._call(lambda client: client.query(sql, parameters=params).result_rows)
        return [_event(row) for row in rows]

    async def ping(self) -> None:
        await self._call(lambda client: client.command("SELECT 1"))

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                client, self._client = self._client, None
            if client is not None:
                client.close()

        await asyncio.to_thread(close)


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _event(row: Sequence[Any]) -> GoodEvent:
    (
        event_id,
        type_,
        id_,
        project_id,
        name,
        description,
        priority,
        removed,
        event_time,
        change_id,
        target_id,
        before_priority,
        before_name,
        before_description,
    ) = row
    moment: datetime = event_time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return GoodEvent(
        event_id=_uuid(event_id),
        type=type_,
        id=int(id_),
        project_id=int(project_id),
        name=name,
        description=description,
        priority=int(priority),
        removed=bool(removed),
        event_time=moment.astimezone(UTC),
        change_id=_uuid(change_id),
        target_id=int(target_id),
        before_priority=None if before_priority is None else int(before_priority),
        before_name=before_name,
        before_description=before_description,
    )


async def probe(url: str, within: float) -> None:
    """Return if the ClickHouse server at ``url`` answers ``SELECT 1`` (what
    ``ClickHouseLogStore.ping`` asks) within about ``within`` seconds, on a client of its own
    that creates nothing, else raise ``LogStoreError``."""

    def check() -> None:
        client = clickhouse_connect.get_client(
            dsn=url, connect_timeout=within, send_receive_timeout=within
        )
        try:
            client.command("SELECT 1")
        finally:
            client.close()

    try:
        await asyncio.to_thread(check)
    except (ClickHouseError, OSError) as exc:
        raise LogStoreError(" ".join(str(exc).split())) from exc
