"""Helpers shared by the tests (no fixtures: those are in the conftest files).

- ``MEMORY`` / ``memory_settings(**overrides)``: the app with every adapter in memory;
- ``app_client(container)``: the app of a container behind a started Litestar test client;
- ``eventually(check, within=, what=)``: poll a condition with a deadline (never a sleep);
- ``logs_until(client, count)``: poll ``GET /logs`` until it lists ``count`` events;
- ``child_env(**values)``: the environment for a child process, without this shell's settings;
- ``EVENT_KEYS``: the keys of an audit event's JSON, in their agreed order.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings

#: Every adapter family on its in-memory adapter: the app with no server at all.
MEMORY: dict[str, Any] = {
    "catalog_store": "memory",
    "list_cache": "lru",
    "orders_store": "memory",
    "orders_cache": "lru",
    "orders_warm_count": 0,
    "orders_broker": "memory",
    "events_broker": "memory",
    "log_store": "memory",
}


def memory_settings(**overrides: Any) -> Settings:
    """``Settings`` of ``MEMORY`` and ``overrides``, ignoring the environment's ``.env``."""
    return Settings(_env_file=None, **{**MEMORY, **overrides})  # type: ignore[call-arg]


@asynccontextmanager
async def app_client(container: Container) -> AsyncIterator[AsyncTestClient[Any]]:
    """``create_app(container)`` behind a started test client (its lifespan run), then closed."""
    async with AsyncTestClient(create_app(container)) as client:
        yield client


async def eventually(
    check: Callable[[], Awaitable[bool] | bool],
    *,
    within: float = 5.0,
    what: str = "condition",
    interval: float | None = None,
) -> None:
    """Return once ``check()`` (plain or async) is true; fail the test after ``within`` seconds.

    Polls every ``interval`` seconds: 10 ms by default, 50 ms for waits longer than 10 s (the
    real servers of integration tests, which a tighter loop would only load)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = interval if interval is not None else (0.05 if within > 10 else 0.01)
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(pause)


async def logs_until(
    client: httpx.AsyncClient, count: int, *, query: str = "?limit=1000", within: float = 5.0
) -> list[dict[str, Any]]:
    """``GET /logs{query}``'s events once it lists at least ``count``; fails after ``within``."""
    logs: list[dict[str, Any]] = []

    async def enough() -> bool:
        nonlocal logs
        response = await client.get(f"/logs{query}")
        assert response.status_code == 200, response.text
        logs = response.json()["logs"]
        return len(logs) >= count

    await eventually(enough, within=within, what=f"{count} events in GET /logs{query}")
    return logs


def child_env(**values: str) -> dict[str, str]:
    """``os.environ`` without the ``HEXMARKET_*`` settings and ``KAFKA_BOOTSTRAP_SERVERS`` (so a
    developer's shell cannot point a test's child process elsewhere), plus ``values``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEXMARKET_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(values)
    return env


#: The keys of an audit event's JSON (``GoodEvent.to_json``), in their agreed order.
EVENT_KEYS: tuple[str, ...] = (
    "event_id",
    "type",
    "id",
    "project_id",
    "name",
    "description",
    "priority",
    "removed",
    "event_time",
    "change_id",
    "target_id",
    "before_priority",
    "before_name",
    "before_description",
)
