"""The composition root: one dependency-injector container builds every adapter, client, use
case and worker object from ``Settings``; ``Selector`` providers pick each adapter family by
configuration. Nothing else in ``src/`` constructs these (the start-up probes of
``entrypoints.probes`` aside: they open short-lived connections of their own).

Whatever owns a connection or runs for the life of the process is a ``Resource`` (its lifecycle
is in ``entrypoints.resources``: opened on first use, closed at ``shutdown_resources``, workers
before the clients they use): the PostgreSQL pool, Redis, the orders and audit buses, the log
store, the outbox's relay side, the dead-letter archives, the catalog service, the order
queries, the outbox relay, the log writer and the orders consumer. The use cases' metrics are
registered there too (``resources.watched``), and their ``on_retry`` / ``on_batch`` hooks are
passed here: metrics are wired to objects in this module and nowhere else. Stateless
adapters over a client, and the in-memory adapters, are ``Singleton``s.

Providers that depend on an async resource return awaitables; callers use ``resolve``.

Feature sections below (catalog, orders, audit) are each owned by one area of the code; tests
override providers (``container.catalog_uow.override(...)``) or pick in-memory adapters through
settings.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from dependency_injector import containers, providers

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
from core.orders.ingest import IngestOrders, OrderConsumer
from core.orders.queries import OrderQueries
from core.ports.clock import SystemClock, Uuid4Generator
from entrypoints import metrics, resources
from entrypoints.catalog_wire import encode_page
from entrypoints.settings import Settings


async def resolve(value: Any) -> Any:
    """The value of a provider call: providers that depend on an async ``Resource`` return
    awaitables, the others plain values; callers need not know which."""
    return await value if inspect.isawaitable(value) else value


async def close_container(container: Container) -> None:
    """Close every resource the container opened: workers first, then the clients they use."""
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result


def lazy(target: str) -> Callable[..., Any]:
    """``"module:name"``, imported on the first call: a process imports only the adapters its
    settings select (``consume-orders`` on NATS never loads Kafka, Redis, ClickHouse or the HTTP
    framework), which is most of its start-up time."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


def event_bus(
    settings: Any, broker: Any, *, topic: Any, stream: Any, client_id: str
) -> providers.Selector:
    """A bus picked by the ``broker`` setting: NATS (``topic`` kept in the JetStream
    ``stream``), Kafka (as ``client_id``) or the in-process one. Clients are Resources."""
    return providers.Selector(
        broker,
        nats=providers.Resource(resources.init_nats_bus, settings, topic=topic, stream=stream),
        kafka=providers.Resource(resources.init_kafka_bus, settings, client_id=client_id),
        memory=providers.Singleton(MemoryEventBus),
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4Generator)

    pg_pool = providers.Resource(resources.init_pg_pool, settings)
    redis = providers.Resource(resources.init_redis, settings)

    # --- catalog ---------------------------------------------------------------------------
    # catalog_store: PgCatalogStore | MemoryCatalogStore (settings.catalog_store);
    # list_cache: RedisCache | LruCache (settings.list_cache); catalog_service: the use cases.
    catalog_store = providers.Selector(
        settings.provided.catalog_store,
        postgres=providers.Singleton(
            PgCatalogStore, pool=pg_pool, topic=settings.provided.events_topic
        ),
        memory=providers.Singleton(
            MemoryCatalogStore, clock=clock, topic=settings.provided.events_topic
        ),
    )
    list_cache = providers.Selector(
        settings.provided.list_cache,
        redis=providers.Singleton(
            lazy("adapters.redis_cache:RedisCache"), client=redis, prefix="hexmarket:"
        ),
        lru=providers.Singleton(LruCache, maxsize=10_000),
    )
    catalog_service = providers.Resource(
        resources.watched(CatalogService, metrics.watch_catalog),
        store=catalog_store,
        cache=list_cache,
        clock=clock,
        ids=ids,
        encode_page=encode_page,
        ttl=settings.provided.list_cache_ttl,
    )

    # --- orders ----------------------------------------------------------------------------
    # orders_repository: PgOrderRepository | MemoryOrderRepository (settings.orders_store);
    # orders_cache: LruCache | RedisCache (settings.orders_cache); order_queries: GET /order;
    # orders_bus: NatsEventBus | KafkaEventBus | MemoryEventBus (settings.orders_broker);
    # orders_ingest: one batch's use case; orders_consumer: the consume loop around it
    # (entrypoints.workers.orders_consumer runs it).
    orders_repository = providers.Selector(
        settings.provided.orders_store,
        postgres=providers.Singleton(PgOrderRepository, pool=pg_pool),
        memory=providers.Singleton(MemoryOrderRepository),
    )
    orders_cache = providers.Selector(
        settings.provided.orders_cache,
        lru=providers.Singleton(LruCache, maxsize=settings.provided.orders_cache_size),
        redis=providers.Singleton(
            lazy("adapters.redis_cache:RedisCache"), client=redis, prefix="hexmarket:"
        ),
    )
    order_queries = providers.Resource(
        resources.watched(OrderQueries, metrics.watch_orders),
        repository=orders_repository,
        cache=orders_cache,
    )
    orders_bus = event_bus(
        settings,
        settings.provided.orders_broker,
        topic=settings.provided.orders_topic,
        stream=settings.provided.orders_stream,
        client_id="hexmarket",
    )
    dead_letter_store = providers.Selector(
        settings.provided.orders_store,
        postgres=providers.Singleton(PgDeadLetterStore, pool=pg_pool),
        memory=providers.Singleton(MemoryDeadLetterStore),
    )
    # broker_dead_letters / pg_dead_letters: the dead letters read back (``hexmarket dlq``):
    # the dead-letter topic (NATS | Kafka; none in memory) and the PostgreSQL table.
    broker_dead_letters = providers.Selector(
        settings.provided.orders_broker,
        nats=providers.Resource(resources.init_nats_dead_letters, settings),
        kafka=providers.Resource(resources.init_kafka_dead_letters, settings),
        memory=providers.Object(None),
    )
    pg_dead_letters = providers.Resource(resources.init_pg_dead_letters, pg_pool)
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
    orders_consumer = providers.Resource(
        resources.watched(OrderConsumer),
        source=orders_bus,
        topic=settings.provided.orders_topic,
        group=settings.provided.orders_group,
        ingest=orders_ingest,
        batch_size=settings.provided.ingest_batch_size,
        batch_timeout=providers.Callable(lambda s: s.ingest_batch_ms / 1000, settings),
        on_batch=providers.Object(metrics.record_order_batch),
        on_retry=providers.Object(metrics.retry_hook("consume-orders")),
    )

    # --- audit trail -----------------------------------------------------------------------
    # events_bus: NatsEventBus | KafkaEventBus | MemoryEventBus (settings.events_broker);
    # log_store: ClickHouseLogStore | MemoryLogStore (settings.log_store); outbox_relay_store:
    # the relay side of the catalog store's outbox; outbox_relay / log_writer: the use cases
    # (entrypoints.workers.relay / .logwriter run their loops).
    events_bus = event_bus(
        settings,
        settings.provided.events_broker,
        topic=settings.provided.events_topic,
        stream=settings.provided.events_stream,
        client_id="hexmarket-audit",
    )
    log_store = providers.Selector(
        settings.provided.log_store,
        clickhouse=providers.Resource(resources.init_clickhouse_log_store, settings),
        memory=providers.Singleton(MemoryLogStore),
    )
    outbox_relay_store = providers.Selector(
        settings.provided.catalog_store,
        postgres=providers.Resource(resources.init_pg_outbox_relay, pg_pool, settings),
        memory=providers.Singleton(MemoryOutboxRelay, catalog_store),
    )
    outbox_relay = providers.Resource(
        resources.watched(OutboxRelay, metrics.watch_relay),
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
    log_writer = providers.Resource(
        resources.watched(LogWriter, metrics.watch_log_writer),
        events_bus,
        log_store,
        topic=settings.provided.events_topic,
        group=settings.provided.events_group,
        batch_size=settings.provided.log_batch_size,
        batch_ms=settings.provided.log_batch_ms,
        on_retry=providers.Object(metrics.retry_hook("write-logs")),
    )
