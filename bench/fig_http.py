"""HTTP figures: ``GET /order/{uid}`` cache hits, ``GET /goods/list`` from Redis, and memory
per cached order; each against a bare Litestar handler serving the same bytes."""

from __future__ import annotations

import http.client
import json
import random
import subprocess

from bench import wrk
from bench.context import Bench
from bench.data import order_messages
from bench.hexmarket import HOST, require_module, serve, serve_bare
from bench.procs import HttpServer, ProcessError, running
from bench.report import Figure
from bench.stats import Stat, Target

ORDER_CONNECTIONS = 64
LIST_CONNECTIONS = 64


def fetch_all(server: HttpServer, paths: list[str]) -> dict[str, tuple[int, dict[str, str], bytes]]:
    """GET every path over one keep-alive connection: status, headers, body."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    out = {}
    try:
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            out[path] = (response.status, headers, response.read())
    finally:
        conn.close()
    return out


def _compare(
    bench: Bench, hexmarket: HttpServer, bare: HttpServer, paths: list[str], connections: int
) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """Warm-up each, then alternate runs of hexmarket and the ceiling."""
    hex_rps: list[float] = []
    hex_p99: list[float] = []
    bare_rps: list[float] = []
    bare_p99: list[float] = []
    runs = bench.sizes.runs
    for i in range(runs + 1):
        # Run 0 is the warm-up of both, with the warm-up duration; it is not recorded.
        duration = bench.sizes.http_warmup_s if i == 0 else bench.sizes.http_run_s
        for server, rps, p99 in ((hexmarket, hex_rps, hex_p99), (bare, bare_rps, bare_p99)):
            result = wrk.run(
                server.base_url,
                connections=connections,
                duration_s=duration,
                paths=paths,
                workdir=bench.workdir / f"wrk-{server.name}",
            )
            if result.errors:
                raise ProcessError(
                    f"{server.name}: {result.non_2xx_3xx} non-2xx/3xx responses, "
                    f"socket errors {result.socket_errors}"
                )
            if i > 0:
                rps.append(result.requests_per_s)
                p99.append(result.p99_s * 1000)
    return (hex_rps, hex_p99), (bare_rps, bare_p99)


def _load_orders(bench: Bench, count: int, run: str) -> tuple[str, list[bytes]]:
    from bench.fig_ingest import load_orders

    dsn = bench.fresh_database("orders")
    messages = order_messages(count, run=run)
    load_orders(dsn, messages, batch=bench.sizes.copy_batch)
    return dsn, messages


def order_get(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.orders", "the orders HTTP route")
    count = bench.sizes.http_paths
    dsn, messages = _load_orders(bench, count, "g")
    paths = [f"/order/{json.loads(m)['order_uid']}" for m in messages]
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn,
        HEXMARKET_ORDERS_CACHE="lru",
        HEXMARKET_ORDERS_CACHE_SIZE=str(count * 2),
        HEXMARKET_ORDERS_WARM_COUNT=str(count),
    )
    hexmarket = serve(bench, "hexmarket-orders", env)
    with running(hexmarket):
        fetch_all(hexmarket, paths)  # every order is now cached (warm-up did most)
        seen = fetch_all(hexmarket, paths)
        misses = [
            p for p, (status, h, _) in seen.items() if status != 200 or h.get("x-cache") != "hit"
        ]
        if misses:
            raise ProcessError(f"{len(misses)} orders not served as cache hits, e.g. {misses[0]}")
        data = {"orders": {p.rsplit("/", 1)[1]: body.decode() for p, (_, _, body) in seen.items()}}
        bare = serve_bare(bench, "bare-orders", data)
        with running(bare):
            (hex_rps, hex_p99), (bare_rps, bare_p99) = _compare(
                bench, hexmarket, bare, paths, ORDER_CONNECTIONS
            )
    ceiling = "bare Litestar handler, same bytes from a dict"
    return [
        Figure(
            key="order-get-rps",
            title=f"GET /order/{{uid}} cache hit, {ORDER_CONNECTIONS} conns",
            unit="req/s",
            hexmarket=Stat.of(hex_rps),
            ceiling=Stat.of(bare_rps),
            ceiling_label=ceiling,
            target=Target(op=">=", value=0.8),
        ),
        Figure(
            key="order-get-p99",
            title=f"GET /order/{{uid}} cache hit, {ORDER_CONNECTIONS} conns: p99",
            unit="ms",
            hexmarket=Stat.of(hex_p99),
            ceiling=Stat.of(bare_p99),
            ceiling_label=ceiling,
            higher_is_better=False,
            target=Target(op=">=", value=0.8),
            note="p99 ratio is ceiling p99 / hexmarket p99 (1.0 = as fast as the ceiling)",
        ),
    ]


def _post_json(server: HttpServer, path: str, body: dict[str, object]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def goods_list(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.catalog", "the catalog HTTP routes")
    dsn = bench.fresh_database("goods")
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn,
        HEXMARKET_LIST_CACHE="redis",
        HEXMARKET_REDIS_URL=bench.stack.redis_url(),
    )
    hexmarket = serve(bench, "hexmarket-goods", env)
    with running(hexmarket):
        for i in range(50 if not bench.smoke else 12):
            status, body = _post_json(
                hexmarket,
                "/good/create?projectId=1",
                {"name": f"good {i}", "description": "x" * 40},
            )
            if status != 200:
                raise ProcessError(f"/good/create answered {status}: {body[:200]!r}")
        paths = [f"/goods/list?limit=10&offset={o}" for o in (1, 11, 21, 31, 41)]
        if bench.smoke:
            paths = paths[:2]
        fetch_all(hexmarket, paths)  # fills the cache
        seen = fetch_all(hexmarket, paths)
        data = {
            "goods": {
                p.split("limit=")[1].replace("&offset=", ","): body.decode()
                for p, (_, _, body) in seen.items()
            }
        }
        bare = serve_bare(bench, "bare-goods", data)
        with running(bare):
            (hex_rps, _), (bare_rps, _) = _compare(bench, hexmarket, bare, paths, LIST_CONNECTIONS)
    return [
        Figure(
            key="goods-list-rps",
            title=f"GET /goods/list from Redis, {LIST_CONNECTIONS} conns",
            unit="req/s",
            hexmarket=Stat.of(hex_rps),
            ceiling=Stat.of(bare_rps),
            ceiling_label="bare Litestar handler, same bytes from a dict",
            target=Target(op=">=", value=0.6),
        )
    ]


# Requests the paths in order from the offset given after `--`, wrapping around at the end
# (one thread, so the order is exact and `requests` says how far it got).
FILL_SCRIPT = """
local paths = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = tonumber(args[2]) or 0
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _fill(bench: Bench, server: HttpServer, paths: list[str]) -> None:
    """Request every path once (wrk in slices, each continuing where the last stopped)."""
    script = bench.workdir / "fill.lua"
    script.write_text(FILL_SCRIPT)
    listing = bench.workdir / "fill.txt"
    listing.write_text("\n".join(paths) + "\n")
    done = 0
    while done < len(paths):
        argv = [wrk.ensure_installed(), "-t1", "-c16", "-d3s", "--timeout=10s"]
        argv += ["-s", str(script), server.base_url, "--", str(listing), str(done)]
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
        result = wrk.parse(ran.stdout)
        if result.errors or result.requests <= 16:
            raise ProcessError(f"filling the cache: {ran.stdout}")
        # Requests still in flight when wrk stopped are not counted: they may be unanswered.
        done += max(0, result.requests - 16)


def memory(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.orders", "the orders HTTP route")
    count = bench.sizes.memory_orders
    dsn, messages = _load_orders(bench, count, "m")
    paths = [f"/order/{json.loads(m)['order_uid']}" for m in messages]
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn,
        HEXMARKET_ORDERS_CACHE="lru",
        HEXMARKET_ORDERS_CACHE_SIZE=str(count + 1000),
        HEXMARKET_ORDERS_WARM_COUNT="0",
    )
    per_order: list[float] = []
    rng = random.Random(7)
    for run in range(bench.sizes.runs):
        server = serve(bench, f"hexmarket-memory-{run}", env)
        with running(server):
            fetch_all(server, paths[:200] * 2)  # the code paths are warm, 200 orders cached
            before = server.rss_bytes()
            _fill(bench, server, paths[200:])
            after = server.rss_bytes()
            sample = fetch_all(server, rng.sample(paths, min(50, len(paths))))
            if any(h.get("x-cache") != "hit" for _, h, _ in sample.values()):
                raise ProcessError("orders were evicted: the cache did not hold them all")
            per_order.append((after - before) / (len(paths) - 200) / 1024)
    return [
        Figure(
            key="memory-per-order",
            title=f"memory per cached order ({count:,} orders, RSS delta)",
            unit="KB",
            hexmarket=Stat.of(per_order),
            target=Target(op="<=", value=3.0, kind="absolute"),
            higher_is_better=False,
            note=f"mean order document {sum(map(len, messages)) / len(messages) / 1024:.2f} KB",
        )
    ]


__all__ = ["HOST", "goods_list", "memory", "order_get"]
