"""The ``hexmarket`` console script: one click group whose commands are defined here
(``migrate``, ``serve``, ``produce-orders``, ``dev``) or next to their code (each worker's in
``entrypoints.workers``, listed by ``entrypoints.roles``; ``dlq``'s in ``entrypoints.dlq``).

Every command validates the configuration first and, for the processes that talk to servers,
checks that each one answers; a problem ends the command with exit code 1 and one line on
stderr, e.g. ``error: cannot reach PostgreSQL at postgresql://app:***@db:5432/app: connection
refused``. How a command starts (settings, a running ``hexmarket dev``'s servers for the URLs
left unset, one-line errors) is ``entrypoints.launch``: nothing imports this module back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable

import click

from adapters.postgres.migrate import migrate as apply_migrations
from core.errors import BrokerUnavailable, StorageError
from entrypoints import dev as dev_process
from entrypoints import probes, runtime
from entrypoints.container import Container
from entrypoints.devstack import DevStackError, running_stack
from entrypoints.dlq import dlq
from entrypoints.launch import (
    describe_validation_error,
    fail,
    load_settings,
    run_async,
    web_url,
    with_dev_stack,
)
from entrypoints.produce import destination, run_produce
from entrypoints.roles import COMMANDS
from entrypoints.settings import Settings

# the start-up helpers live in entrypoints.launch (the workers' own entries use them too)
__all__ = [
    "describe_validation_error",
    "fail",
    "load_settings",
    "main",
    "run_async",
    "web_url",
    "with_dev_stack",
]

log = logging.getLogger("hexmarket")


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
    await runtime.check_servers(settings, ["migrate"])
    assert settings.postgres_url is not None  # checked above
    try:
        applied = await apply_migrations(settings.postgres_url)
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
        import uvloop  # deferred: optional (uvicorn[standard] brings it on CPython)
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, sock: socket.socket | None = None) -> int:
    # deferred: the HTTP framework (Litestar) loads only for the commands that serve HTTP
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


# --- workers: entrypoints.workers, each also runnable as python -m -------------------------------

for _command in COMMANDS:
    main.add_command(_command)


# --- dead letters: entrypoints/dlq.py ----------------------------------------------------------

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
    settings = load_settings(discover=False, http_port=port, data_dir=data_dir)
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
        code = run_async(dev_process.run(settings))
    except (DevStackError, StorageError) as exc:
        fail(str(exc).splitlines()[0])
    sys.exit(code)
