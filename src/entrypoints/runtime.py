"""Process plumbing shared by the long-running commands and ``hexmarket dev``: start-up checks,
signal handling, the HTTP server inside the running event loop, workers as tasks, and an
orderly stop (workers finish the batch in hand first, then HTTP, then the clients close).

It sits below the worker modules: a worker module hands its ``run_*`` function to
``worker_command`` for its own ``python -m`` entry, and ``entrypoints.roles`` lists the roles
for ``hexmarket`` and ``hexmarket dev``; nothing here imports a worker or the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import click
import uvicorn

from entrypoints import metrics, probes, tracing
from entrypoints.container import Container
from entrypoints.container import close_container as close_container  # also runtime.close_container
from entrypoints.launch import load_settings, run_async
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket")

WorkerFn = Callable[[Container, asyncio.Event], Awaitable[None]]
"""A worker role's body: runs until its stop event is set (``entrypoints.workers``)."""

#: How long an orderly stop may take before the remaining tasks are cancelled.
STOP_GRACE_SECONDS = 20.0


def bind_worker(
    role: str, worker: WorkerFn, container: Container
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The worker as a task body for ``run_tasks``, sampling its servers' readiness gauge."""

    async def run_worker(own_stop: asyncio.Event) -> None:
        settings: Settings = container.settings()
        checks = probes.Readiness(container, [role])  # type: ignore[list-item]

        async def readiness() -> None:  # the checks of ``GET /ready``, on the worker's clients
            metrics.set_readiness(await checks.results())

        async with metrics.sampling(settings.metrics_interval, readiness, "readiness"):
            await worker(container, own_stop)

    return run_worker


async def run_worker_process(settings: Settings, role: str, worker: WorkerFn) -> int:
    """One worker role as a whole process: its servers checked, its metrics served on
    ``HEXMARKET_METRICS_PORT`` when set, run until SIGTERM / SIGINT, the container closed.
    Returns the exit code."""
    await check_servers(settings, [role])  # type: ignore[list-item]
    if settings.metrics_port is not None:
        metrics.serve_metrics(settings.metrics_port, settings.http_host)
        log.info("metrics listening", extra={"port": settings.metrics_port})
    container = Container(settings=settings)
    stop = asyncio.Event()
    tasks: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {
        role: bind_worker(role, worker, container)
    }
    with stop_on_signals(stop):
        try:
            return await run_tasks(tasks, stop)
        finally:
            await close_container(container)


def worker_command(role: str, worker: WorkerFn, doc: str) -> click.Command:
    """The command running ``worker`` as a process: ``hexmarket <role>``, and the worker
    module's own ``python -m`` entry."""

    def command() -> None:
        settings = load_settings()
        sys.exit(run_async(run_worker_process(settings, role, worker)))

    command.__doc__ = doc
    return click.command(name=role, context_settings={"help_option_names": ["-h", "--help"]})(
        command
    )


async def check_servers(settings: Settings, roles: Sequence[probes.Role]) -> None:
    """Raise ``ConfigurationError`` / ``UnreachableError`` for the first server that fails."""
    deps = probes.needed(settings, roles)
    for dep in deps:
        if not dep.url:  # optional, and not configured: the process starts without it
            log.warning(
                "%s is not configured: starting without it (set HEXMARKET_%s_URL)",
                dep.label,
                dep.name.upper(),
            )
    deps = [dep for dep in deps if dep.url]
    results = await probes.check_all(deps, within=3.0)
    for dep in deps:
        reason = results[dep.name]
        if reason is not None:
            raise probes.UnreachableError(dep, reason)


def check_listen(host: str, port: int) -> None:
    """Raise ``ConfigurationError`` if ``host:port`` cannot be listened on (in use, bad address)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise probes.ConfigurationError(
            f"cannot listen on {host}:{port} (HEXMARKET_HTTP_HOST/HEXMARKET_HTTP_PORT): "
            f"{reason.lower()}"
        ) from exc


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, for worker processes to share; an address that
    cannot be listened on is a ``ConfigurationError`` (as ``check_listen``)."""
    check_listen(host, port)
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_in_processes(workers: int, serve_one: Callable[[int], int]) -> int:
    """Fork ``workers`` processes each running ``serve_one(index)`` (it serves a socket bound
    before the fork, so the kernel spreads connections among them), and supervise them: SIGTERM
    or SIGINT is passed on to every worker; a worker that exits while the others run is logged,
    the others are stopped, and the exit code is non-zero so an orchestrator restarts the lot.
    Returns the worst exit code. Call it before any thread or event loop exists."""
    children: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = serve_one(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                logging.shutdown()
                tracing.flush()  # os._exit skips the exporter's own flush at exit
                os._exit(code)
        children[pid] = index
    stopping = False

    def stop_all(signum: int, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGTERM, signal.SIGINT)}
    worst = 0
    try:
        while children:
            pid, status = os.wait()
            index = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                log.error(
                    "HTTP worker exited: stopping the others", extra={"worker": index, "code": code}
                )
                stop_all(signal.SIGTERM)
                code = code or 1
            if stopping and code in (-signal.SIGTERM, -signal.SIGINT):
                code = 0  # stopped as asked before its own handlers were in place (start-up)
            worst = max(worst, code if code >= 0 else 128 - code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return worst


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT / SIGTERM set ``stop``; a second SIGINT while stopping raises KeyboardInterrupt
    (the tasks are cancelled; servers the process started are still stopped at exit)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def handle(sig: signal.Signals) -> None:
        if stop.is_set() and sig == signal.SIGINT:
            log.warning("second interrupt: stopping now, without waiting for the tasks")
            loop.remove_signal_handler(sig)  # back to Python's handler: KeyboardInterrupt
            signal.raise_signal(sig)
            return
        log.info("stop requested", extra={"signal": sig.name})
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


class HttpServer(uvicorn.Server):
    """uvicorn's server without its own signal handling: the process's stop event drives it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def bound_port(self) -> int | None:
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None


def http_server(app: Any, settings: Settings) -> HttpServer:
    """uvicorn serving ``app`` with the edge's limits (``entrypoints.http.server``): a request
    must arrive whole within ``HEXMARKET_HTTP_READ_TIMEOUT``, an idle kept-alive connection is
    closed after ``HEXMARKET_HTTP_KEEP_ALIVE`` seconds, a request head is 16 KiB and 100 header
    fields at most. Listening on a loopback address, the app answers only loopback host names
    unless ``HEXMARKET_ALLOWED_HOSTS`` says otherwise (``entrypoints.http.edge``)."""
    # deferred: the workers share this module and never load the HTTP framework (Litestar)
    from entrypoints.http.edge import loopback_hosts
    from entrypoints.http.front import FrontedLitestar, route_of
    from entrypoints.http.server import protocol_class

    if isinstance(app, FrontedLitestar) and settings.allowed_hosts is None:
        app.served_hosts = loopback_hosts(settings.http_host)
    config = uvicorn.Config(
        # a span per request when tracing is on, else ``app`` itself
        tracing.wrap_asgi(app, route_of),
        host=settings.http_host,
        port=settings.http_port,
        http=protocol_class(settings.http_read_timeout),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=settings.http_keep_alive,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return HttpServer(config)


async def serve_http_until(
    server: HttpServer, stop: asyncio.Event, sock: socket.socket | None = None
) -> None:
    """Run ``server`` until ``stop`` is set (or the server ends by itself); on ``sock`` when
    given (a socket bound by the parent of ``serve --workers N``), else on its own."""
    serving = asyncio.create_task(
        server.serve(sockets=[sock] if sock is not None else None), name="http"
    )
    waiting = asyncio.create_task(stop.wait(), name="http-stop")
    try:
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    server.should_exit = True
    try:
        await serving
    except SystemExit as exc:  # uvicorn exits when the app's start-up failed
        raise RuntimeError("HTTP server failed to start (see the log above)") from exc


async def run_tasks(
    tasks: dict[str, Callable[[asyncio.Event], Awaitable[None]]],
    stop: asyncio.Event,
    *,
    order: Sequence[Sequence[str]] | None = None,
) -> int:
    """Run each named task with its own stop event until ``stop`` is set or one task ends.

    A task that ends by itself (an error, or a return before it was asked to stop) stops the
    others. On stop, the groups in ``order`` are stopped one after the other (all tasks at once
    by default), each waited for. Returns the process exit code: 0 for a requested stop with no
    task failing, 1 otherwise.
    """
    own_stops = {name: asyncio.Event() for name in tasks}
    running = {
        name: asyncio.create_task(_call(fn, own_stops[name]), name=name)
        for name, fn in tasks.items()
    }
    stop_wait = asyncio.create_task(stop.wait(), name="stop")
    failed = False
    done, _ = await asyncio.wait(
        {*running.values(), stop_wait}, return_when=asyncio.FIRST_COMPLETED
    )
    for task in done:
        if task is stop_wait:
            continue
        failed = True
        exc = None if task.cancelled() else task.exception()
        log.error(
            "task ended unexpectedly; stopping the others",
            extra={"task": task.get_name(), "error": repr(exc) if exc else "returned"},
        )
    stop.set()
    stop_wait.cancel()
    groups = list(order) if order else [list(tasks)]
    grouped = {name for group in groups for name in group}
    groups.append([name for name in tasks if name not in grouped])
    loop = asyncio.get_running_loop()
    end = loop.time() + STOP_GRACE_SECONDS
    for group in groups:
        members = [running[name] for name in group if name in running]
        for name in group:
            if name in own_stops:
                own_stops[name].set()
        if not members:
            continue
        _, pending = await asyncio.wait(members, timeout=max(0.1, end - loop.time()))
        for task in pending:
            log.warning("task did not stop in time; cancelling", extra={"task": task.get_name()})
            task.cancel()
        for task in members:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception as exc:
                    if task not in done:
                        failed = True
                        log.error(
                            "task failed while stopping",
                            extra={"task": task.get_name(), "error": repr(exc)},
                        )
    return 1 if failed else 0


async def _call(fn: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    await fn(stop)
    if not stop.is_set():
        raise RuntimeError("returned before it was asked to stop")
