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

from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from adapters.lru_cache import LruCache
from adapters.memory.catalog import MemoryCatalogStore
from adapters.postgres.catalog import PgCatalogStore
from adapters.redis_cache import RedisCache
from core.catalog.service import CatalogService
from core.ports.clock import SystemClock, Uuid4Generator
from entrypoints.http.catalog import encode_page
from entrypoints.settings import Settings


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
        redis=providers.Singleton(RedisCache, client=redis, prefix="hexmarket:"),
        lru=providers.Singleton(LruCache, maxsize=10_000),
    )
    catalog_service = providers.Singleton(
        CatalogService,
        store=catalog_store,
        cache=list_cache,
        clock=clock,
        ids=ids,
        encode_page=providers.Object(encode_page),
        ttl=settings.provided.list_cache_ttl,
    )

    # --- orders ----------------------------------------------------------------------------

    # --- audit trail -----------------------------------------------------------------------
