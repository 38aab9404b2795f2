"""What the HTTP handlers are given: one typed function per service, each resolving it from the
container once, at start-up. A route module lists the ones its handlers take
(``DEPENDENCIES``: handler parameter name -> one of these); the app factory bridges them to
Litestar with ``Provide`` (handlers never see dependency-injector)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core.catalog.service import CatalogService
from core.orders.queries import OrderQueries
from core.ports.audit import LogStore
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

Resolver = Callable[[Container], Awaitable[Any]]
"""Builds (or finds) one service in the container; awaited once per app start."""


async def catalog_service(container: Container) -> CatalogService:
    service: CatalogService = await resolve(container.catalog_service())
    return service


async def order_queries(container: Container) -> OrderQueries:
    queries: OrderQueries = await resolve(container.order_queries())
    return queries


async def log_store(container: Container) -> LogStore:
    store: LogStore = await resolve(container.log_store())
    return store


async def settings(container: Container) -> Settings:
    return container.settings()
