"""Helpers shared by the tests (no fixtures: those are in the conftest files).

- ``MEMORY`` / ``memory_settings(**overrides)``: the app with every adapter in memory;
- ``app_client(container)``: the app of a container behind a started Litestar test client;
- ``eventually(check, within=, what=)``: poll a condition with a deadline (never a sleep), and
  ``eventually_blocking`` for synchronous tests;
- ``running(worker)``: a worker's ``run(stop)`` as a task for the block, stopped after it;
- ``run_cli(*args, env=)`` / ``cli_output(done)``: this checkout's ``hexmarket`` as a child process;
- ``answering(url, proc, log, within=)``: wait for a child server to answer ``GET url`` with 200;
- ``http_started(server, serving)``: wait for an in-process HTTP server to listen;
- ``stop_process(proc, within)``: SIGTERM a child process, SIGKILL it if it outlives ``within``;
- ``BrokenCache``: an ``LruCache`` whose every read and write fails;
- ``logs_until(client, count)``: poll ``GET /logs`` until it lists ``count`` events;
- ``child_env(**values)``: the environment for a child process, without this shell's settings;
- ``ON_SERVERS``: hypothesis settings for a stateful test on real servers;
- ``EVENT_KEYS``: the keys of an audit event's JSON, in their agreed order.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

import httpx
from hypothesis import HealthCheck, settings
from litestar.testing import AsyncTestClient

from adapters.lru_cache import LruCache
from core.errors import CacheUnavailable
from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings

T = TypeVar("T")

#: The checkout's root (its ``src`` is what child processes import).
ROOT = Path(__file__).parents[1]

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


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    within: float = ...,
    what: str | Callable[[], str] = ...,
    interval: float | None = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    within: float = ...,
    what: str | Callable[[], str] = ...,
    interval: float | None = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    within: float = 5.0,
    what: str | Callable[[], str] = "condition",
    interval: float | None = None,
) -> Any:
    """Return ``check()``'s first true result (``check`` plain or async); fail the test after
    ``within`` seconds, saying ``what`` (a text, or a function that makes it then).

    Polls every ``interval`` seconds: 10 ms by default, 50 ms for waits longer than 10 s (the
    real servers of integration tests, which a tighter loop would only load)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = interval if interval is not None else (0.05 if within > 10 else 0.01)
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            message = what if isinstance(what, str) else what()
            raise AssertionError(f"{message} not reached within {within}s")
        await asyncio.sleep(pause)


def eventually_blocking(
    check: Callable[[], T],
    *,
    within: float = 5.0,
    what: str | Callable[[], str] = "condition",
    interval: float | None = None,
) -> T:
    """``eventually`` for a synchronous test or fixture (where no event loop runs)."""

    async def poll() -> T:
        return await eventually(check, within=within, what=what, interval=interval)

    return asyncio.run(poll())


class Worker(Protocol):
    """What the core's workers (consumer, relay, log writer) have in common."""

    async def run(self, stop: asyncio.Event) -> None: ...


@asynccontextmanager
async def running(worker: Worker, *, stop_within: float | None = None) -> AsyncIterator[None]:
    """``worker.run(stop)`` as a task for the block; then ``stop`` is set and the task awaited
    (its error raised), failing the test if it takes over ``stop_within`` seconds."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_within)


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """``hexmarket *args`` of this checkout (its ``src``, this interpreter) in a child process
    with ``env``, run from ``ROOT``, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", "from entrypoints.cli import main; main()", *args],
        env={**env, "PYTHONPATH": str(ROOT / "src")},
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def cli_output(done: subprocess.CompletedProcess[bytes]) -> str:
    """The standard output of a command that must have succeeded (else its standard error)."""
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


def answering(
    url: str, proc: subprocess.Popen[Any], log: Path, *, within: float, interval: float = 0.05
) -> httpx.Response:
    """``GET url``'s first 200 response; the test fails, showing ``log``, if ``proc`` exits
    first or ``within`` seconds pass."""

    def answer() -> httpx.Response | None:
        assert proc.poll() is None, log.read_text()
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    found = eventually_blocking(answer, within=within, what=log.read_text, interval=interval)
    assert found is not None
    return found


async def http_started(server: Any, serving: asyncio.Task[Any]) -> str:
    """The base URL of ``server`` (``http_server``'s, on a free port) once it listens; the
    test fails if ``serving`` (its task) ends first, or after 30 s."""

    def listening() -> bool:
        assert not serving.done(), "the HTTP server stopped during start-up"
        return bool(server.started)

    await eventually(listening, within=30, what="the HTTP server's start", interval=0.02)
    return f"http://127.0.0.1:{server.bound_port()}"


def stop_process(proc: subprocess.Popen[Any], within: float) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited ``within`` seconds later."""
    proc.terminate()
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class BrokenCache(LruCache):
    """A cache that is down: every read and write raises ``CacheUnavailable``."""

    async def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise CacheUnavailable("down")


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


#: Hypothesis settings of a stateful test on real servers (``settings(ON_SERVERS, max_examples=)``):
#: 15 steps a run, no deadline, slow examples allowed.
ON_SERVERS = settings(
    stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


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
