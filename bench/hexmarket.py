"""Starting hexmarket's own processes (the real CLI) and checking that the pieces exist."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.context import Bench, NotAvailable
from bench.procs import VENV_BIN, HttpServer

HOST = "127.0.0.1"


def require_module(name: str, what: str) -> None:
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise NotAvailable(f"{what} ({name}) has not landed")


def require_command(name: str) -> None:
    from entrypoints.cli import main

    if name not in getattr(main, "commands", {}):
        raise NotAvailable(f"`hexmarket {name}` has not landed")


def free_port() -> int:
    from entrypoints.devstack import free_port as free

    return free()


def serve(bench: Bench, name: str, env: Mapping[str, str]) -> HttpServer:
    """``hexmarket serve`` as a child process on a free port, ready on ``/health``."""
    require_command("serve")
    port = free_port()
    server = HttpServer(
        name,
        [str(VENV_BIN / "hexmarket"), "serve"],
        env={**env, "HEXMARKET_HTTP_HOST": HOST, "HEXMARKET_HTTP_PORT": str(port)},
        log_dir=bench.logs,
        host=HOST,
        port=port,
    )
    try:
        server.wait_ready("/health", timeout_s=90)
    except BaseException:
        server.stop()
        raise
    return server


# The ASGI server settings of `hexmarket serve` (entrypoints.cli), mirrored for the ceiling.
ASGI_ARGS = (
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
)


def serve_bare(
    bench: Bench,
    name: str,
    data: Mapping[str, object],
    *,
    factory: str = "create_raw_app",
    workers: int = 1,
) -> HttpServer:
    """A ceiling app (``bench.bare_app``: ``create_raw_app``, the bare ASGI callable, or
    ``create_app``, bare Litestar) under the same ASGI server and settings."""
    data_file = bench.workdir / f"{name}.json"
    data_file.write_text(json.dumps(data))
    port = free_port()
    server = HttpServer(
        name,
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench.bare_app:{factory}",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            *ASGI_ARGS,
            *(("--workers", str(workers)) if workers > 1 else ()),
        ],
        env={"BENCH_BARE_DATA": str(data_file)},
        log_dir=bench.logs,
        host=HOST,
        port=port,
    )
    try:
        server.wait_ready("/health", timeout_s=60)
    except BaseException:
        server.stop()
        raise
    return server


def worker_argv(kind: str) -> list[str]:
    return [sys.executable, "-m", "bench.worker", kind]


def repo_path(*parts: str) -> Path:
    return Path(__file__).resolve().parents[1].joinpath(*parts)


# granian's settings for the same comparison: one worker, uvloop, HTTP/1, no access log.
GRANIAN_ARGS = (
    "--interface",
    "asgi",
    "--factory",
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "1",
    "--no-ws",
    "--log-level",
    "warning",
)


def serve_granian(
    bench: Bench, name: str, target: str, env: Mapping[str, str], *, ready: str = "/health"
) -> HttpServer:
    """``bench.granian_target:<target>`` under granian on a free port (ready on ``ready``)."""
    port = free_port()
    server = HttpServer(
        name,
        [
            str(VENV_BIN / "granian"),
            *GRANIAN_ARGS,
            "--host",
            HOST,
            "--port",
            str(port),
            f"bench.granian_target:{target}",
        ],
        env=env,
        log_dir=bench.logs,
        host=HOST,
        port=port,
    )
    try:
        server.wait_ready(ready, timeout_s=90)
    except BaseException:
        server.stop()
        raise
    return server
