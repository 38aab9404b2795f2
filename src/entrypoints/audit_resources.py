"""Lifecycles of the audit trail's clients, used by the container's ``audit trail`` section:
each is an async generator (a dependency-injector ``Resource``) that opens the client and
closes it at ``shutdown_resources``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.outbox import PgOutboxRelay
from core.catalog.events import GoodEvent
from core.errors import LogStoreError
from entrypoints.settings import Settings

# Each client library is imported by the resource that uses it: a process loads only the
# broker and store its settings select (see ``container.lazy``).
if TYPE_CHECKING:
    from adapters.clickhouse_log import ClickHouseLogStore
    from adapters.kafka_bus import KafkaEventBus
    from adapters.nats_bus import NatsEventBus

DEFAULT_CLICKHOUSE_DATABASE = "hexmarket"


def _require(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not configured (set HEXMARKET_{name.upper()})")
    return value


def split_clickhouse_url(url: str) -> tuple[str, str]:
    """``(server url without a database, database)``. The database comes from a ``database``
    query parameter (``chdb:///path?database=db``) or, for HTTP, the path
    (``http://host:8123/db``); default ``hexmarket``. The store creates it if missing."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    database = query.pop("database", "")
    path = parts.path
    if parts.scheme != "chdb" and path.strip("/"):
        database = database or path.strip("/")
        path = ""
    stripped = urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), parts.fragment))
    return stripped, database or DEFAULT_CLICKHOUSE_DATABASE


async def init_nats_events_bus(settings: Settings) -> AsyncIterator[NatsEventBus]:
    from adapters.nats_bus import NatsEventBus

    bus = NatsEventBus(
        _require(settings.nats_url, "nats_url"),
        streams={settings.events_topic: settings.events_stream},
        ack_wait=settings.nats_ack_wait,
        retention=settings.retention(),
    )
    try:
        yield bus
    finally:
        await bus.close()


async def init_kafka_events_bus(settings: Settings) -> AsyncIterator[KafkaEventBus]:
    from adapters.kafka_bus import KafkaEventBus

    bus = KafkaEventBus(
        _require(settings.kafka_bootstrap_servers, "kafka_bootstrap_servers"),
        client_id="hexmarket-audit",
        retention=settings.retention(),
    )
    try:
        yield bus
    finally:
        await bus.close()


class UnconfiguredLogStore:
    """Stands in when ``clickhouse_url`` is unset: the HTTP API still starts (``GET /logs``
    answers 503, ``/ready`` reports it), instead of the whole app failing for one store."""

    async def append(self, events: Sequence[GoodEvent]) -> None:
        raise LogStoreError("clickhouse_url is not configured (set HEXMARKET_CLICKHOUSE_URL)")

    async def query(self, **filters: Any) -> list[GoodEvent]:
        raise LogStoreError("clickhouse_url is not configured (set HEXMARKET_CLICKHOUSE_URL)")

    async def ping(self) -> None:
        raise LogStoreError("clickhouse_url is not configured (set HEXMARKET_CLICKHOUSE_URL)")

    async def close(self) -> None:
        return None


async def init_clickhouse_log_store(
    settings: Settings,
) -> AsyncIterator[ClickHouseLogStore | UnconfiguredLogStore]:
    if not settings.clickhouse_url:
        yield UnconfiguredLogStore()
        return
    from adapters.clickhouse_log import ClickHouseLogStore

    url, database = split_clickhouse_url(settings.clickhouse_url)
    store = ClickHouseLogStore(url, database=database)
    try:
        yield store
    finally:
        await store.close()


async def init_pg_outbox_relay(
    pool: AsyncConnectionPool, settings: Settings
) -> AsyncIterator[PgOutboxRelay]:
    relay = PgOutboxRelay(pool, _require(settings.postgres_url, "postgres_url"))
    try:
        yield relay
    finally:
        await relay.close()
