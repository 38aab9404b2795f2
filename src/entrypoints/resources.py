"""The lifecycles the container's ``Resource`` providers run: each is a generator that builds
one long-lived object, hands it out, and closes it at ``shutdown_resources`` (the container
shuts its resources down in reverse dependency order: workers before the clients they use).

- clients: the PostgreSQL pool, Redis, the NATS / Kafka buses (orders and audit alike), the
  log store, the outbox's relay side, the dead-letter archives ``hexmarket dlq`` reads;
- the use cases and workers (catalog service, order queries, outbox relay, log writer, orders
  consumer): ``watched(factory, metrics.watch_...)`` builds one and registers its counters
  with ``entrypoints.metrics``; this is the one place metrics are wired to objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.dead_letters import PgDeadLetterArchive
from adapters.postgres.outbox import PgOutboxRelay
from core.catalog.events import GoodEvent
from core.errors import LogStoreError
from core.ports.audit import NEWEST, LogQuery
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from adapters.clickhouse_log import ClickHouseLogStore
    from adapters.kafka_bus import KafkaEventBus
    from adapters.kafka_dead_letters import KafkaDeadLetterArchive
    from adapters.nats_bus import NatsEventBus
    from adapters.nats_dead_letters import NatsDeadLetterArchive

T = TypeVar("T")

DEFAULT_CLICKHOUSE_DATABASE = "hexmarket"


def require(value: str | None, name: str) -> str:
    """``value``, or a ``RuntimeError`` naming the variable to set when it is empty."""
    if not value:
        raise RuntimeError(f"{name} is not configured (set HEXMARKET_{name.upper()})")
    return value


def watched(factory: Callable[..., T], *watches: Callable[[T], None]) -> Callable[..., Iterator[T]]:
    """A ``Resource`` initializer: ``factory(...)``, registered with each of ``watches`` (the
    ``entrypoints.metrics.watch_*`` functions) once built. The metrics hold it weakly, so
    nothing is left to undo at shutdown."""

    def init(*args: Any, **kwargs: Any) -> Iterator[T]:
        built = factory(*args, **kwargs)
        for watch in watches:
            watch(built)
        yield built

    init.__qualname__ = init.__name__ = f"init_{getattr(factory, '__name__', 'resource')}"
    return init


# --- clients -------------------------------------------------------------------------------------


async def init_pg_pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        require(settings.postgres_url, "postgres_url"),
        min_size=2,
        max_size=settings.pg_pool_size,
        open=False,
        name="hexmarket",
    )
    await pool.open(wait=True, timeout=15)
    try:
        yield pool
    finally:
        await pool.close()


async def init_redis(settings: Settings) -> AsyncIterator[Redis]:
    # deferred: the Redis driver loads only in a process whose settings choose Redis
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(
        require(settings.redis_url, "redis_url"),
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=10,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def init_nats_bus(settings: Settings, topic: str, stream: str) -> AsyncIterator[NatsEventBus]:
    """A JetStream bus keeping ``topic`` in ``stream``."""
    # deferred: the NATS client loads only in a process whose settings choose NATS
    from adapters.nats_bus import NatsEventBus

    bus = NatsEventBus(
        require(settings.nats_url, "nats_url"),
        streams={topic: stream},
        ack_wait=settings.nats_ack_wait,
        retention=settings.retention(),
    )
    try:
        yield bus
    finally:
        await bus.close()


async def init_kafka_bus(
    settings: Settings, client_id: str = "hexmarket"
) -> AsyncIterator[KafkaEventBus]:
    # deferred: librdkafka (confluent_kafka) loads only in a process whose settings choose Kafka
    from adapters.kafka_bus import KafkaEventBus

    bus = KafkaEventBus(
        require(settings.kafka_bootstrap_servers, "kafka_bootstrap_servers"),
        client_id=client_id,
        retention=settings.retention(),
    )
    try:
        yield bus
    finally:
        await bus.close()


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


class UnconfiguredLogStore:
    """Stands in when ``clickhouse_url`` is unset: the HTTP API still starts (``GET /logs``
    answers 503, ``/ready`` reports it), instead of the whole app failing for one store."""

    async def append(self, events: Sequence[GoodEvent]) -> None:
        raise LogStoreError("clickhouse_url is not configured (set HEXMARKET_CLICKHOUSE_URL)")

    async def query(self, query: LogQuery = NEWEST) -> list[GoodEvent]:
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
    # deferred: clickhouse-connect (and chDB) load only in a process that writes or reads logs
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
    relay = PgOutboxRelay(pool, require(settings.postgres_url, "postgres_url"))
    try:
        yield relay
    finally:
        await relay.close()


# --- the dead letters read back by ``hexmarket dlq`` ---------------------------------------------


async def init_nats_dead_letters(settings: Settings) -> AsyncIterator[NatsDeadLetterArchive]:
    """The dead-letter subject's JetStream stream, read back."""
    # deferred: the NATS client loads only when the settings name NATS
    from adapters.nats_bus import stream_for
    from adapters.nats_dead_letters import NatsDeadLetterArchive

    topic = settings.orders_dlq_topic
    archive = NatsDeadLetterArchive(
        require(settings.nats_url, "nats_url"), stream=stream_for(topic, {}), subject=topic
    )
    try:
        yield archive
    finally:
        await archive.close()


async def init_kafka_dead_letters(settings: Settings) -> AsyncIterator[KafkaDeadLetterArchive]:
    """The dead-letter topic, read back."""
    # deferred: librdkafka (confluent_kafka) loads only when the settings name Kafka
    from adapters.kafka_dead_letters import KafkaDeadLetterArchive

    archive = KafkaDeadLetterArchive(
        require(settings.kafka_bootstrap_servers, "kafka_bootstrap_servers"),
        topic=settings.orders_dlq_topic,
    )
    try:
        yield archive
    finally:
        await archive.close()


async def init_pg_dead_letters(pool: AsyncConnectionPool) -> AsyncIterator[PgDeadLetterArchive]:
    """The PostgreSQL ``dead_letters`` table (what the broker refused), read back."""
    archive = PgDeadLetterArchive(pool)
    try:
        yield archive
    finally:
        await archive.close()
