"""Which backends each contract suite of ``core.contracts`` runs on: the one place to look.

``CONTRACTS`` has one row per suite: the fixture its tests ask for and the backends it runs on
in each tier. The in-memory adapters run in ``tests/unit`` (no server); the real servers in
``tests/integration``. The test classes below are collected by ``tests/unit/test_contracts.py``
and ``tests/integration/test_contracts.py``; ``pytest_generate_tests`` gives each class the
backends of the tier it is collected in, so every test id names its backend
(``TestCache::test_set_replaces[redis]``). The fixture of each suite, further down, builds the
backend its parameter names; the integration ones ask for the session's servers
(``tests/conftest.py``) only when they run.

Adding a backend to a suite: add its name to the row (``unit`` for an in-process adapter,
``integration`` for one that needs a server) and a branch to the suite's fixture. An adapter
outside this repository runs a suite without any of this: subclass it and provide the fixture
(``docs/architecture.md``, "Writing and contract-testing a new adapter").

Loaded as a plugin by ``tests/conftest.py``; fixture names (``cache``, ``harness``,
``bus_harness``, ``log_store``, ``reference``, ``order_repository``, ``outbox``) are the
suites' own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import psycopg
import pytest
from _pytest.mark import ParameterSet
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from adapters.lru_cache import LruCache
from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.logstore import MemoryLogStore
from adapters.memory.orders import MemoryOrderRepository
from adapters.memory.outbox import MemoryOutboxRelay
from adapters.nats_bus import NatsEventBus
from adapters.postgres.catalog import PgCatalogStore
from adapters.postgres.migrate import migrate
from adapters.postgres.orders import PgOrderRepository
from adapters.postgres.outbox import PgOutboxRelay
from adapters.redis_cache import RedisCache
from core.contracts.bus import BusHarness, EventBusContract, default_names
from core.contracts.cache import CacheContract, ViewCacheContract
from core.contracts.catalog import CatalogHarness, CatalogStoreContract
from core.contracts.logstore import LogStoreContract
from core.contracts.orders import (  # noqa: F401  (canonical_sample: the suite's fixture)
    OrderRepositoryContract,
    canonical_sample,
)
from core.contracts.outbox import OutboxPair, OutboxRelayStoreContract
from core.ports.audit import LogStore
from core.ports.bus import EventBus
from core.ports.cache import Cache
from core.ports.catalog import CatalogStore
from core.ports.orders import OrderRepository

Backend = str | ParameterSet


@attrs.frozen
class Backends:
    """The backends of one suite per tier (ids are the names)."""

    unit: Sequence[Backend]
    integration: Sequence[Backend]


class TestCache(CacheContract):
    pass


class TestViewCache(ViewCacheContract):
    """A cache that keeps views (``core.ports.cache.ViewCache``): the cache contract and more."""


class TestCatalogStore(CatalogStoreContract):
    pass


class TestEventBus(EventBusContract):
    pass


class TestLogStore(LogStoreContract):
    pass


class TestOrderRepository(OrderRepositoryContract):
    pass


class TestOutboxRelayStore(OutboxRelayStoreContract):
    pass


#: suite -> (the fixture its tests ask for, its backends per tier)
CONTRACTS: dict[type, tuple[str, Backends]] = {
    # the LRU is a view cache: it runs the cache contract as part of TestViewCache
    TestCache: ("cache", Backends(unit=[], integration=["redis"])),
    TestViewCache: ("cache", Backends(unit=["lru"], integration=[])),
    TestCatalogStore: ("harness", Backends(unit=["memory"], integration=["postgres"])),
    TestEventBus: (
        "bus_harness",
        Backends(
            unit=["memory-dedup", "memory-kafka-like"],
            integration=["nats", pytest.param("kafka", marks=pytest.mark.kafka)],
        ),
    ),
    TestLogStore: ("log_store", Backends(unit=["memory"], integration=["clickhouse"])),
    TestOrderRepository: (
        "order_repository",
        Backends(unit=["memory"], integration=["postgres"]),
    ),
    TestOutboxRelayStore: ("outbox", Backends(unit=["memory"], integration=["postgres"])),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.cls not in CONTRACTS:
        return
    fixture, backends = CONTRACTS[metafunc.cls]
    tier = "integration" if "integration" in metafunc.definition.path.parts else "unit"
    metafunc.parametrize(fixture, getattr(backends, tier), indirect=True)


# --- the suites' fixtures: one branch per backend ---------------------------------------------


@pytest.fixture
async def cache(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[Cache]:
    """A fresh, empty cache (``CacheContract``)."""
    if request.param == "lru":
        yield LruCache(maxsize=100)
        return
    assert request.param == "redis"
    client: Redis = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisCache(client=client, prefix=f"{unique}:")
    await client.aclose()


@attrs.define
class MemoryCatalogHarness:
    store: MemoryCatalogStore = attrs.field(factory=MemoryCatalogStore)

    async def outbox_payloads(self) -> list[bytes]:
        return [r.payload for r in self.store.outbox_records()]


@attrs.define
class PgCatalogHarness:
    store: CatalogStore
    dsn: str

    async def outbox_payloads(self) -> list[bytes]:
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            cur = await conn.execute("SELECT payload FROM outbox ORDER BY id")
            return [bytes(row[0]) for row in await cur.fetchall()]


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[CatalogHarness]:
    """A fresh catalog store seeded with project 1 (``CatalogStoreContract``)."""
    if request.param == "memory":
        yield MemoryCatalogHarness()
        return
    assert request.param == "postgres"
    pg_url = request.getfixturevalue("pg_url")
    await migrate(pg_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        pg_url, min_size=1, max_size=60, open=False
    )
    await pool.open(wait=True, timeout=15)
    yield PgCatalogHarness(PgCatalogStore(pool=pool, topic="goods.events"), pg_url)
    await pool.close()


@pytest.fixture
def bus_harness(request: pytest.FixtureRequest, unique: str) -> BusHarness:
    """How ``EventBusContract`` reaches a broker; memory in both de-duplication modes."""
    topic, group = default_names(f"bus{unique}")
    kind = request.param
    if kind.startswith("memory"):
        dedupe = kind == "memory-dedup"
        shared = MemoryEventBus(dedupe_by_key=dedupe)

        async def memory_bus() -> EventBus:
            return shared

        return BusHarness(
            connect=memory_bus,
            topic_name=topic,
            group_name=group,
            dedupes_by_key=dedupe,
            patience=2,
        )
    if kind == "nats":
        url = request.getfixturevalue("nats_url")

        async def nats_bus() -> EventBus:
            return NatsEventBus(url, ack_wait=5.0)

        return BusHarness(
            connect=nats_bus, topic_name=topic, group_name=group, dedupes_by_key=True, patience=10
        )
    assert kind == "kafka"
    from adapters.kafka_bus import KafkaEventBus  # deferred: librdkafka only where Kafka runs

    bootstrap = request.getfixturevalue("kafka_bootstrap")

    async def kafka_bus() -> EventBus:
        return KafkaEventBus(bootstrap, partitions=3)

    return BusHarness(
        connect=kafka_bus, topic_name=topic, group_name=group, dedupes_by_key=False, patience=30
    )


@pytest.fixture
async def log_store(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[LogStore]:
    """A fresh, empty log store (``LogStoreContract``); chDB in its own database per test."""
    if request.param == "memory":
        yield MemoryLogStore()
        return
    assert request.param == "clickhouse"
    from adapters.clickhouse_log import ClickHouseLogStore  # deferred: the chDB engine is heavy

    store = ClickHouseLogStore(request.getfixturevalue("clickhouse_url"), database=unique)
    await store.start()
    yield store
    await store.close()


@pytest.fixture
def reference() -> MemoryLogStore:
    """The in-memory model ``LogStoreContract``'s agreement property compares against."""
    return MemoryLogStore()


@pytest.fixture
async def order_repository(request: pytest.FixtureRequest) -> AsyncIterator[OrderRepository]:
    """A fresh, empty order repository (``OrderRepositoryContract``)."""
    if request.param == "memory":
        yield MemoryOrderRepository()
        return
    assert request.param == "postgres"
    pg_url = request.getfixturevalue("pg_url")
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
        yield PgOrderRepository(pool)


@pytest.fixture
async def outbox(request: pytest.FixtureRequest) -> AsyncIterator[OutboxPair]:
    """A fresh, empty outbox and the relay store under test (``OutboxRelayStoreContract``)."""
    if request.param == "memory":
        store = MemoryCatalogStore()
        yield OutboxPair(store=store, relay=MemoryOutboxRelay(store))
        return
    assert request.param == "postgres"
    pg_url = request.getfixturevalue("pg_url")
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
        relay = PgOutboxRelay(pool, pg_url)
        try:
            yield OutboxPair(store=PgCatalogStore(pool=pool), relay=relay)
        finally:
            await relay.close()
