"""The ``hexmarket`` console script.

Every command validates the configuration first and, for the processes that talk to servers,
checks that each one answers; a problem ends the command with exit code 1 and one line on
stderr, e.g. ``error: cannot reach PostgreSQL at postgresql://app:***@db:5432/app: connection
refused``.

A command started while ``hexmarket dev`` runs on the same data directory (``HEXMARKET_DATA_DIR``,
default ``.hexmarket``) uses that stack's servers for every URL left unset, so the README's
steps work in a second terminal as written; what is set in the environment always wins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
import pydantic

from entrypoints import probes, runtime
from entrypoints.settings import Settings

T = TypeVar("T")

log = logging.getLogger("hexmarket")


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    from entrypoints.settings_doc import env_names

    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = Settings.model_fields.get(field)
        name = env_names(field, info)[0] if info is not None else field
        parts.append(f"{name}: {error['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(*, discover: bool = True, **overrides: Any) -> Settings:
    """Settings from the environment and ``.env``; invalid ones end the command. With
    ``discover``, server URLs left unset come from a running ``hexmarket dev`` (see above)."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except pydantic.ValidationError as exc:
        fail(describe_validation_error(exc))
    from entrypoints.logging import configure

    configure(settings.log_level, json_lines=settings.log_json)
    from entrypoints import tracing  # off unless configured: then it imports nothing more

    command = click.get_current_context(silent=True)
    tracing.configure(settings, process=command.info_name if command else None)
    if discover:
        settings = with_dev_stack(settings)
    return settings


def with_dev_stack(settings: Settings) -> Settings:
    """``settings`` with each unset server URL taken from the ``hexmarket dev`` running on
    ``settings.data_dir``, if one runs; unchanged otherwise."""
    from entrypoints.devstack import running_stack

    urls = running_stack(settings.data_dir)
    if not urls:
        return settings
    update = {
        name: url
        for name, url in urls.items()
        if name in Settings.model_fields and getattr(settings, name) is None
    }
    if update:
        log.info(
            "using the servers of the running hexmarket dev",
            extra={"data_dir": str(settings.data_dir), "servers": sorted(update)},
        )
    return settings.model_copy(update=update)


def web_url(settings: Settings) -> str:
    """The HTTP API's base URL: the running ``hexmarket dev``'s, else the configured one."""
    from entrypoints.dev import base_url
    from entrypoints.devstack import running_stack

    recorded = (running_stack(settings.data_dir) or {}).get("http_url")
    return recorded or base_url(settings, settings.http_port)


def run_async(
    main: Coroutine[Any, Any, T],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``main`` (on a loop from ``loop_factory``, else the standard one); configuration
    and reachability errors become one line and exit 1."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    except (probes.ConfigurationError, probes.UnreachableError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # interrupted before the signal handlers were in place
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hexmarket")
def main() -> None:
    """hexmarket: goods catalog with an audit trail, and order ingest.

    Configuration comes from HEXMARKET_* environment variables (and a .env file); see the
    README's configuration table.
    """


# --- migrate -------------------------------------------------------------------------------------


@main.command()
def migrate() -> None:
    """Apply pending PostgreSQL migrations (safe to run from several processes at once)."""
    settings = load_settings()
    run_async(_migrate(settings))


async def _migrate(settings: Settings) -> None:
    from adapters.postgres.migrate import migrate as run
    from core.errors import StorageError

    await runtime.check_servers(settings, ["migrate"])
    assert settings.postgres_url is not None  # checked above
    try:
        applied = await run(settings.postgres_url)
    except StorageError as exc:
        fail(str(exc).splitlines()[0])
    click.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


# --- serve ---------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Listen address [HEXMARKET_HTTP_HOST].")
@click.option("--port", type=int, default=None, help="Listen port [HEXMARKET_HTTP_PORT].")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Processes sharing the port, each with its own caches [HEXMARKET_HTTP_WORKERS].",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API and the web page (GET /health, /ready, /metrics, /schema/swagger)."""
    settings = load_settings(http_host=host, http_port=port, http_workers=workers)
    if settings.http_workers == 1:
        sys.exit(run_async(_serve(settings), loop_factory=http_loop_factory()))
    try:
        sock = runtime.listen(settings.http_host, settings.http_port)
    except probes.ConfigurationError as exc:
        fail(str(exc))

    def one(index: int) -> int:
        log.info("HTTP worker started", extra={"worker": index, "pid": os.getpid()})
        return run_async(_serve(settings, sock), loop_factory=http_loop_factory())

    sys.exit(runtime.serve_in_processes(settings.http_workers, one))


def http_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop for the HTTP server where it is installed (``uvicorn[standard]``
    brings it on CPython), else ``None``: the standard loop. Measured on the hot read paths:
    the loop's socket I/O is a large share of a cache hit (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, sock: socket.socket | None = None) -> int:
    from entrypoints.container import Container
    from entrypoints.http.app import create_app

    if sock is None:
        runtime.check_listen(settings.http_host, settings.http_port)
    await runtime.check_servers(settings, ["serve"])
    container = Container(settings=settings)
    app = create_app(container)
    server = runtime.http_server(app, settings)
    stop = asyncio.Event()

    async def http(own_stop: asyncio.Event) -> None:
        await runtime.serve_http_until(server, own_stop, sock)

    with runtime.stop_on_signals(stop):
        try:
            return await runtime.run_tasks({"http": http}, stop)
        finally:
            await runtime.close_container(container)


# --- workers -------------------------------------------------------------------------------------


def _worker_command(role: str, doc: str) -> click.Command:
    def command() -> None:
        settings = load_settings()
        sys.exit(run_async(_run_worker(settings, role)))

    command.__doc__ = doc
    return main.command(name=role)(command)


async def _run_worker(settings: Settings, role: str) -> int:
    from entrypoints import metrics
    from entrypoints.container import Container

    await runtime.check_servers(settings, [role])  # type: ignore[list-item]
    worker = runtime.WORKERS[role]
    if settings.metrics_port is not None:
        metrics.serve_metrics(settings.metrics_port, settings.http_host)
        log.info("metrics listening", extra={"port": settings.metrics_port})
    container = Container(settings=settings)
    stop = asyncio.Event()

    tasks: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {
        role: runtime.bind_worker(role, worker, container)
    }
    with runtime.stop_on_signals(stop):
        try:
            return await runtime.run_tasks(tasks, stop)
        finally:
            await runtime.close_container(container)


_worker_command(
    "consume-orders",
    "Ingest orders from the broker (HEXMARKET_ORDERS_BROKER) into PostgreSQL; invalid ones go "
    "to the dead-letter topic.",
)
_worker_command(
    "relay-outbox",
    "Publish audit events from the PostgreSQL outbox to the broker (HEXMARKET_EVENTS_BROKER).",
)
_worker_command(
    "write-logs",
    "Write audit events from the broker into the log store (ClickHouse) in batches.",
)


# --- dead letters: entrypoints/dlq.py ----------------------------------------------------------

from entrypoints.dlq import dlq  # noqa: E402 - its commands use the helpers above

main.add_command(dlq)


# --- orders demo ---------------------------------------------------------------------------------


@main.command("produce-orders")
@click.option("--count", type=click.IntRange(min=1), required=True, help="Messages to publish.")
@click.option(
    "--invalid-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of corrupted messages (broken JSON, wrong types, missing fields, "
    "inconsistent totals, non-UTF-8 bytes).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Messages per second at most (default: as fast as the broker acknowledges).",
)
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable demos.")
def produce_orders(count: int, invalid_share: float, rate: float | None, seed: int | None) -> None:
    """Publish realistic demo orders to the orders broker (HEXMARKET_ORDERS_BROKER, topic
    HEXMARKET_ORDERS_TOPIC), with a progress bar."""
    from core.errors import BrokerUnavailable
    from entrypoints.produce import run_produce

    settings = load_settings()
    if settings.orders_broker == "memory":
        fail("HEXMARKET_ORDERS_BROKER=memory exists only inside one process; use nats or kafka")
    run_async(runtime.check_servers(settings, ["produce-orders"]))
    try:
        report = run_async(
            run_produce(settings, count=count, invalid_share=invalid_share, rate=rate, seed=seed)
        )
    except BrokerUnavailable as exc:
        fail(str(exc))
    from entrypoints.produce import destination

    invalid = ", ".join(f"{n} {kind}" for kind, n in sorted(report.invalid.items())) or "none"
    click.echo(
        f"published {report.total} orders to {destination(settings)}: "
        f"{report.valid} valid, invalid: {invalid}"
    )
    if report.uids:
        click.echo(f"open {web_url(settings)}/order/{report.uids[0]}")


# --- dev -----------------------------------------------------------------------------------------


@main.command()
@click.option("--port", type=int, default=None, help="HTTP port [HEXMARKET_HTTP_PORT].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Work directory of the embedded servers [HEXMARKET_DATA_DIR].",
)
def dev(port: int | None, data_dir: str | None) -> None:
    """Everything in one process: embedded PostgreSQL, Redis, NATS and ClickHouse engine (Kafka
    when a broker setting names it), migrations, HTTP, orders consumer, outbox relay and log
    writer. Data persists in the work directory. Ctrl-C stops everything."""
    from core.errors import StorageError
    from entrypoints import dev as dev_module
    from entrypoints.devstack import DevStackError

    settings = load_settings(discover=False, http_port=port, data_dir=data_dir)
    from entrypoints.devstack import running_stack

    other = running_stack(settings.data_dir)
    if other:
        fail(
            f"hexmarket dev already runs on {settings.data_dir} ({other.get('http_url', '')}); "
            "stop it first, or use another HEXMARKET_DATA_DIR"
        )
    try:
        runtime.check_listen(settings.http_host, settings.http_port)
    except probes.ConfigurationError as exc:
        fail(str(exc))
    try:
        code = run_async(dev_module.run(settings))
    except (DevStackError, StorageError) as exc:
        fail(str(exc).splitlines()[0])
    sys.exit(code)
