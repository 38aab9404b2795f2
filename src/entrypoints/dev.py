"""``hexmarket dev``: the whole system in one process on the embedded default.

The supervisor (``DevStack``) starts PostgreSQL, Redis, NATS (and Kafka when a broker setting
asks for it) with their data under ``settings.data_dir``, so data survives restarts; ClickHouse
is chDB's in-process engine in the same directory unless a URL is configured. Then migrations,
then the HTTP API and the three workers as tasks of one event loop, a banner with the URLs,
and on SIGINT / SIGTERM an orderly stop: workers finish the batch in hand, HTTP drains, clients
close, the servers stop.

While it serves, the URLs of its servers and of its HTTP API are recorded in
``<data_dir>/stack.json`` (``devstack.record_stack``), so the other commands started in a second
terminal with the same data directory find them (``entrypoints.launch``). On a fresh stack the
canonical sample order (``docs/model.json``) is stored, so the README's examples answer.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TextIO

from adapters.postgres.migrate import migrate
from core.orders.model import Order
from core.orders.parsing import parse_order
from entrypoints import probes, runtime
from entrypoints.container import Container, resolve
from entrypoints.devstack import DevStack, forget_stack, record_stack
from entrypoints.launch import base_url
from entrypoints.roles import WORKERS
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.dev")

#: The canonical sample order of the README and the web page's placeholder.
SAMPLE_ORDER: Final = Path(__file__).resolve().parents[2] / "docs" / "model.json"

#: The ``Settings`` fields a second process can reuse (chDB's engine lives inside this one).
SHARED_URLS: Final = ("postgres_url", "redis_url", "nats_url", "kafka_bootstrap_servers")


def _stack_env(settings: Settings) -> dict[str, str]:
    """The external-server variables as ``Settings`` read them (``.env`` included)."""
    env = {
        "HEXMARKET_POSTGRES_URL": settings.postgres_url,
        "HEXMARKET_REDIS_URL": settings.redis_url,
        "HEXMARKET_NATS_URL": settings.nats_url,
        "HEXMARKET_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HEXMARKET_CLICKHOUSE_URL": settings.clickhouse_url,
    }
    return {key: value for key, value in env.items() if value}


def with_servers(settings: Settings, stack: Any) -> Settings:
    """``settings`` with each needed server's URL filled in from the supervisor."""
    brokers = {settings.orders_broker, settings.events_broker}
    names: list[str] = []
    if "postgres" in (settings.catalog_store, settings.orders_store):
        names.append("postgres")
    if "redis" in (settings.list_cache, settings.orders_cache):
        names.append("redis")
    names += [b for b in ("nats", "kafka") if b in brokers]
    urls: dict[str, str] = stack.ensure(*names) if names else {}
    update: dict[str, Any] = {}
    if "postgres" in urls:
        update["postgres_url"] = urls["postgres"]
    if "redis" in urls:
        update["redis_url"] = urls["redis"]
    if "nats" in urls:
        update["nats_url"] = urls["nats"]
    if "kafka" in urls:
        update["kafka_bootstrap_servers"] = urls["kafka"]
    if settings.log_store == "clickhouse":
        update["clickhouse_url"] = stack.clickhouse_url()
    return settings.model_copy(update=update)


def stack_urls(settings: Settings, port: int) -> dict[str, str]:
    """What ``stack.json`` records: the shareable server URLs and ``http_url``."""
    urls = {name: getattr(settings, name) for name in SHARED_URLS if getattr(settings, name)}
    if settings.clickhouse_url and not settings.clickhouse_url.startswith("chdb://"):
        urls["clickhouse_url"] = settings.clickhouse_url
    urls["http_url"] = base_url(settings, port)
    return urls


async def store_sample_order(container: Container, path: Path = SAMPLE_ORDER) -> bool:
    """Store the sample order (idempotent: an order's first write wins); ``False`` when the
    file is missing (an installed package without the docs) or does not validate."""
    try:
        order = parse_order(await asyncio.to_thread(path.read_bytes))
    except OSError:
        return False
    if not isinstance(order, Order):
        log.warning("sample order %s is invalid: %s", path, order)
        return False
    repository = await resolve(container.orders_repository())
    await repository.add_many([order])
    log.info("sample order stored", extra={"order_uid": order.order_uid})
    return True


def banner(settings: Settings, port: int, workers: list[str]) -> str:
    base = base_url(settings, port)
    rows = [
        ("web page", f"{base}/"),
        ("Swagger UI", f"{base}/schema/swagger"),
        ("OpenAPI", f"{base}/schema/openapi.json"),
        ("metrics", f"{base}/metrics"),
        ("ready", f"{base}/ready"),
    ]
    servers = [
        ("PostgreSQL", settings.postgres_url),
        ("Redis", settings.redis_url),
        ("NATS", settings.nats_url),
        ("Kafka", settings.kafka_bootstrap_servers),
        ("ClickHouse", settings.clickhouse_url),
    ]
    rows += [(label, probes.mask_password(url)) for label, url in servers if url]
    rows.append(("data", str(settings.data_dir.resolve())))
    rows.append(("workers", ", ".join(workers) or "none"))
    width = max(len(label) for label, _ in rows)
    lines = ["", "hexmarket dev is running"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += ["Ctrl-C stops everything.", ""]
    return "\n".join(lines)


async def run(settings: Settings, *, out: TextIO | None = None) -> int:
    """Run everything until SIGINT / SIGTERM; returns the exit code."""
    # deferred: the HTTP framework (Litestar) loads only when the stack serves, not for the CLI
    from entrypoints.http.app import create_app

    out = out or sys.stdout
    stop = asyncio.Event()
    with runtime.stop_on_signals(stop):
        stack = DevStack(settings.data_dir, env=_stack_env(settings))
        try:
            log.info("starting servers", extra={"data_dir": str(stack.workdir)})
            ready_settings = await asyncio.to_thread(with_servers, settings, stack)
            if stop.is_set():
                return 0
            if ready_settings.postgres_url:
                applied = await migrate(ready_settings.postgres_url)
                log.info("migrations applied", extra={"count": len(applied)})
            return await _run_processes(ready_settings, stop, out, create_app)
        finally:
            forget_stack(stack.workdir)
            await asyncio.to_thread(stack.close)
            log.info("servers stopped")


async def _run_processes(
    settings: Settings,
    stop: asyncio.Event,
    out: TextIO,
    create_app: Callable[[Container], Any],
) -> int:
    container = Container(settings=settings)
    await store_sample_order(container)
    workers: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {}
    for role, worker in WORKERS.items():
        workers[role] = runtime.bind_worker(role, worker, container)

    app = create_app(container)
    app.state.roles = ("serve", *workers)  # /ready checks what this process runs
    server = runtime.http_server(app, settings)

    async def http(own_stop: asyncio.Event) -> None:
        await runtime.serve_http_until(server, own_stop)

    async def announce(own_stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        # uvicorn exposes start-up only as a flag
        while not server.started and loop.time() < end and not own_stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            port = server.bound_port() or settings.http_port
            record_stack(settings.data_dir.resolve(), stack_urls(settings, port))
            out.write(banner(settings, port, list(workers)) + "\n")
            out.flush()
        await own_stop.wait()

    tasks: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {
        **workers,
        "http": http,
        "banner": announce,
    }
    try:
        # workers finish and commit the batch in hand first; HTTP drains after them (the app's
        # lifespan closes the shared clients when it ends)
        return await runtime.run_tasks(tasks, stop, order=[list(workers), ["http", "banner"]])
    finally:
        await runtime.close_container(container)
