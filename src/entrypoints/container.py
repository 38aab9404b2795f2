"""The composition root: one dependency-injector container builds every adapter from
``Settings``; ``Selector`` providers pick each adapter family by configuration.

Clients are ``Resource``s (async generators: opened at ``init_resources``, closed at
``shutdown_resources``). Providers that depend on an async resource return awaitables; the
entrypoints resolve what they need once at start (see ``entrypoints.http.app``).

Feature sections below (catalog, orders, audit) are each owned by one area of the code; tests
override providers (``container.catalog_uow.override(...)``) or pick in-memory adapters through
settings.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool

from adapters.lru_cache import LruCache
from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.dead_letters import MemoryDeadLetterStore
from adapters.memory.logstore import MemoryLogStore
from adapters.memory.orders import MemoryOrderRepository
from adapters.memory.outbox import MemoryOutboxRelay
from adapters.msgspec_orders import parse_order_fast
from adapters.postgres.catalog import PgCatalogStore
from adapters.postgres.dead_letters import PgDeadLetterStore
from adapters.postgres.orders import PgOrderRepository
from core.audit.logwriter import LogWriter
from core.audit.relay import OutboxRelay
from core.catalog.service import CatalogService
from core.orders.ingest import IngestOrders
from core.orders.queries import OrderQueries
from core.ports.clock import SystemClock, Uuid4Generator
from entrypoints import audit_resources, metrics
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


async def resolve(value: Any) -> Any:
    """The value of a provider call: providers that depend on an async ``Resource`` return
    awaitables, the others plain values; callers need not know which."""
    return await value if inspect.isawaitable(value) else value


def lazy(target: str) -> Callable[..., Any]:
    """``"module:name"``, imported on the first call: a process imports only the adapters its
    settings select (``consume-orders`` on NATS never loads Kafka, Redis, ClickHouse or the HTTP
    framework), which is most of its start-up time."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


def attribute(target: str) -> Any:
    """``"module:name"`` itself, imported when a provider asks for it (see ``lazy``)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _require(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not configured (set HEXMARKET_{name.upper()})")
    return value


async def init_pg_pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        _require(settings.postgres_url, "postgres_url"),
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
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(
        _require(settings.redis_url, "redis_url"),
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=10,
    )
    try:
        yield client
    finally:
        await client.aclose()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4Generator)

    pg_pool = providers.Resource(init_pg_pool, settings)
    redis = providers.Resource(init_redis, settings)

    # --- catalog ---------------------------------------------------------------------------
    # catalog_store: PgCatalogStore | MemoryCatalogStore (settings.catalog_store);
    # list_cache: RedisCache | LruCache (settings.list_cache); catalog_service: the use cases.
    catalog_store = providers.Selector(
        providers.Callable(lambda s: s.catalog_store, settings),
        postgres=providers.Singleton(
            PgCatalogStore, pool=pg_pool, topic=settings.provided.events_topic
        ),
        memory=providers.Singleton(
            MemoryCatalogStore, clock=clock, topic=settings.provided.events_topic
        ),
    )
    list_cache = providers.Selector(
        providers.Callable(lambda s: s.list_cache, settings),
        redis=providers.Singleton(
            lazy("adapters.redis_cache:RedisCache"), client=redis, prefix="hexmarket:"
        ),
        lru=providers.Singleton(LruCache, maxsize=10_000),
    )
    catalog_service = providers.Singleton(
        CatalogService,
        store=catalog_store,
        cache=list_cache,
        clock=clock,
        ids=ids,
        encode_page=providers.Callable(attribute, "entrypoints.http.catalog:encode_page"),
        ttl=settings.provided.list_cache_ttl,
    )

    # --- orders ----------------------------------------------------------------------------
    # orders_repository: PgOrderRepository | MemoryOrderRepository (settings.orders_store);
    # orders_cache: LruCache | RedisCache (settings.orders_cache); order_queries: GET /order;
    # orders_bus: NatsEventBus | KafkaEventBus | MemoryEventBus (settings.orders_broker);
    # orders_ingest: one batch's use case (entrypoints.workers.orders_consumer runs the loop).
    orders_repository = providers.Selector(
        providers.Callable(lambda s: s.orders_store, settings),
        postgres=providers.Singleton(PgOrderRepository, pool=pg_pool),
        memory=providers.Singleton(MemoryOrderRepository),
    )
    orders_cache = providers.Selector(
        providers.Callable(lambda s: s.orders_cache, settings),
        lru=providers.Singleton(LruCache, maxsize=settings.provided.orders_cache_size),
        redis=providers.Singleton(
            lazy("adapters.redis_cache:RedisCache"), client=redis, prefix="hexmarket:"
        ),
    )
    order_queries = providers.Singleton(
        OrderQueries, repository=orders_repository, cache=orders_cache
    )
    orders_bus = providers.Selector(
        providers.Callable(lambda s: s.orders_broker, settings),
        nats=providers.Singleton(
            lazy("adapters.nats_bus:NatsEventBus"),
            providers.Callable(_require, settings.provided.nats_url, "nats_url"),
            streams=providers.Callable(lambda s: {s.orders_topic: s.orders_stream}, settings),
            ack_wait=settings.provided.nats_ack_wait,
            retention=settings.provided.retention.call(),
        ),
        kafka=providers.Singleton(
            lazy("adapters.kafka_bus:KafkaEventBus"),
            providers.Callable(
                _require, settings.provided.kafka_bootstrap_servers, "kafka_bootstrap_servers"
            ),
            retention=settings.provided.retention.call(),
        ),
        memory=providers.Singleton(MemoryEventBus),
    )
    dead_letter_store = providers.Selector(
        providers.Callable(lambda s: s.orders_store, settings),
        postgres=providers.Singleton(PgDeadLetterStore, pool=pg_pool),
        memory=providers.Singleton(MemoryDeadLetterStore),
    )
    orders_ingest = providers.Factory(
        IngestOrders,
        repository=orders_repository,
        publisher=orders_bus,
        dlq_topic=settings.provided.orders_dlq_topic,
        clock=clock,
        parse=parse_order_fast,
        dead_letters=dead_letter_store,
        payload_limit=settings.provided.dead_letter_payload_limit,
    )

    # --- audit trail -----------------------------------------------------------------------
    # events_bus: NatsEventBus | KafkaEventBus | MemoryEventBus (settings.events_broker);
    # log_store: ClickHouseLogStore | MemoryLogStore (settings.log_store); outbox_relay_store:
    # the relay side of the catalog store's outbox; outbox_relay / log_writer: the use cases
    # (entrypoints.workers.relay / .logwriter run their loops).
    events_bus = providers.Selector(
        providers.Callable(lambda s: s.events_broker, settings),
        nats=providers.Resource(audit_resources.init_nats_events_bus, settings),
        kafka=providers.Resource(audit_resources.init_kafka_events_bus, settings),
        memory=providers.Singleton(MemoryEventBus),
    )
    log_store = providers.Selector(
        providers.Callable(lambda s: s.log_store, settings),
        clickhouse=providers.Resource(audit_resources.init_clickhouse_log_store, settings),
        memory=providers.Singleton(MemoryLogStore),
    )
    outbox_relay_store = providers.Selector(
        providers.Callable(lambda s: s.catalog_store, settings),
        postgres=providers.Resource(audit_resources.init_pg_outbox_relay, pg_pool, settings),
        memory=providers.Singleton(MemoryOutboxRelay, catalog_store),
    )
    outbox_relay = providers.Singleton(
        OutboxRelay,
        outbox_relay_store,
        events_bus,
        batch_size=settings.provided.relay_batch_size,
        idle_wait=providers.Callable(lambda s: s.relay_idle_ms / 1000, settings),
        lanes=settings.provided.relay_lanes,
        keep_sent=providers.Callable(
            lambda s: s.outbox_keep_sent_hours * 3600 if s.outbox_keep_sent_hours else None,
            settings,
        ),
        on_retry=providers.Object(metrics.retry_hook("relay-outbox")),
    )
    log_writer = providers.Singleton(
        LogWriter,
        events_bus,
        log_store,
        topic=settings.provided.events_topic,
        group=settings.provided.events_group,
        batch_size=settings.provided.log_batch_size,
        batch_ms=settings.provided.log_batch_ms,
        on_retry=providers.Object(metrics.retry_hook("write-logs")),
    )
