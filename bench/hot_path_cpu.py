"""Diagnostic (not a ``make bench`` figure, not a test): CPU per cache hit inside the process.

``wrk`` figures on this shared 2-core machine move with whoever else is running; the CPU a
request costs in the HTTP process does not. This drives the ASGI applications directly, with
prebuilt ``scope`` / ``receive`` / ``send`` (no sockets, no HTTP parsing, no server):

- hexmarket: ``create_app`` (the front, then Litestar) on memory stores, the orders cache an
  LRU warmed with ``--orders`` orders, the list cache an LRU or a Redis (``--redis``, a server
  of the project's own ``DevStack``);
- the ceiling: ``bench.bare_app.create_raw_app`` serving the bytes and headers hexmarket
  answered for the same requests.

The two alternate, ``--rounds`` times, each round ``--requests`` requests issued by
``--concurrency`` tasks (so the Redis reads of one event-loop turn batch as under ``wrk``).
Printed per contender and route: µs of process CPU (``time.process_time``) and of wall time
(``time.perf_counter``) per request, median [min-max] over the rounds. The difference between
the two contenders is hexmarket's own work per hit; the server's (HTTP parsing, the socket
writes) is the same for both and is not in either figure.

    .venv/bin/python -m bench.hot_path_cpu [--redis] [--routes order list]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.data import order
from core.contracts.orders import order_from
from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.http.edge import loopback_hosts
from entrypoints.http.front import FrontedLitestar
from entrypoints.settings import Settings

App = Callable[[Any, Any, Any], Awaitable[None]]
_HEADERS = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]


def _scope(target: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": _HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Collect:
    """A ``send`` keeping the response (status, headers, body)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        else:
            self.body += message.get("body", b"")


async def _discard(message: dict[str, Any]) -> None:
    return None


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    """Start ``app``'s lifespan; return what shuts it down."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def _drive(app: App, scopes: list[dict[str, Any]], requests: int, tasks: int) -> None:
    per_task = requests // tasks

    async def one(offset: int) -> None:
        count = len(scopes)
        for i in range(per_task):
            await app(dict(scopes[(offset + i) % count]), _receive, _discard)

    await asyncio.gather(*(one(t * 7919) for t in range(tasks)))


async def _measure(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, list[float]]]:
    stack = None
    extra: dict[str, Any] = {"list_cache": "lru"}
    if args.redis:
        from entrypoints.devstack import DevStack

        stack = DevStack(workdir / "servers")
        extra = {"list_cache": "redis", "redis_url": stack.redis_url()}
    settings = Settings(
        catalog_store="memory",
        orders_store="memory",
        orders_cache="lru",
        orders_cache_size=max(args.orders, 1),
        orders_warm_count=args.orders,
        orders_broker="memory",
        events_broker="memory",
        log_store="memory",
        **extra,
    )
    container = Container(settings=settings)
    uids = [order(i)["order_uid"] for i in range(args.orders)]
    await container.orders_repository().add_many([order_from(order(i)) for i in range(args.orders)])
    catalog = await resolve(container.catalog_service())
    for i in range(30):
        await catalog.create_good(project_id=1, name=f"good {i}")
    litestar = create_app(container)
    if isinstance(litestar, FrontedLitestar):  # as ``hexmarket serve`` on a loopback address
        litestar.served_hosts = loopback_hosts("127.0.0.1")
    app: App = litestar
    stop = await _lifespan(app)
    targets = {
        "order": [f"/order/{uid}" for uid in uids],
        "list": ["/goods/list", "/goods/list?limit=5", "/goods/list?limit=10&offset=11"],
    }
    seen: dict[str, list[Any]] = {}
    for route in args.routes:
        for target in targets[route]:
            for _ in range(2):  # the first may be a miss; the second is what a hit answers
                got = _Collect()
                await app(_scope(target), _receive, got)
            expected = "hit" if route == "order" else None
            cache = dict(got.headers).get(b"x-cache")
            if got.status != 200 or (expected and cache != expected.encode()):
                raise RuntimeError(f"{target}: {got.status} {cache!r}")
            headers = [
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in got.headers
                if k != b"content-length"
            ]
            seen[target] = [got.body.decode(), headers]
    data = workdir / "bare.json"
    data.write_text(json.dumps({"responses": seen}))
    os.environ["BENCH_BARE_DATA"] = str(data)
    from bench.bare_app import create_raw_app

    raw: App = create_raw_app()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for route in args.routes:
            scopes = [_scope(t) for t in targets[route]]
            for name, contender in (("raw", raw), ("hexmarket", app)):
                await _drive(contender, scopes, args.requests // 10, args.concurrency)  # warm
                results.setdefault(f"{route} {name}", {"cpu": [], "wall": []})
            for _ in range(args.rounds):
                for name, contender in (("raw", raw), ("hexmarket", app)):
                    cpu, wall = time.process_time(), time.perf_counter()
                    await _drive(contender, scopes, args.requests, args.concurrency)
                    row = results[f"{route} {name}"]
                    row["cpu"].append((time.process_time() - cpu) / args.requests * 1e6)
                    row["wall"].append((time.perf_counter() - wall) / args.requests * 1e6)
    finally:
        await stop()
        if stack is not None:
            stack.close()
    return results


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", action="store_true", help="the list cache on Redis")
    parser.add_argument("--routes", nargs="+", choices=("order", "list"), default=["order", "list"])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of ``hexmarket serve``
        pass
    with tempfile.TemporaryDirectory(prefix="hot-path-") as tmp:
        results = asyncio.run(_measure(args, Path(tmp)))
    print(f"µs per request, median [min-max] of {args.rounds} rounds of {args.requests:,}")
    print(f"{'route / contender':<22} {'process CPU':<24} wall")
    for key, row in results.items():
        print(f"{key:<22} {_cell(row['cpu']):<24} {_cell(row['wall'])}")
    for route in args.routes:
        raw, ours = results[f"{route} raw"], results[f"{route} hexmarket"]
        extra = statistics.median(ours["cpu"]) - statistics.median(raw["cpu"])
        print(f"{route}: hexmarket's own work per hit {extra:.2f} µs CPU")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
