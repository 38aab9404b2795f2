"""HTTP figures: ``GET /order/{uid}`` cache hits, ``GET /goods/list`` from Redis, and memory
per cached order. The ceiling is a raw ASGI callable sending the same bytes and headers under
the same server; a bare Litestar handler doing the same is measured beside it for information."""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import subprocess
import time

import attrs
import psycopg

from bench import wrk
from bench.context import Bench
from bench.data import order_messages
from bench.hexmarket import HOST, require_module, serve, serve_bare, serve_granian
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


def all_cache_hits(
    server: HttpServer, paths: list[str]
) -> dict[str, tuple[int, dict[str, str], bytes]]:
    """GET every path twice (the first round caches what the warm-up did not); the second
    round's answers, every one a 200 cache hit (else ``ProcessError``)."""
    fetch_all(server, paths)
    seen = fetch_all(server, paths)
    misses = [p for p, (status, h, _) in seen.items() if status != 200 or h.get("x-cache") != "hit"]
    if misses:
        raise ProcessError(
            f"{server.name}: {len(misses)} orders not served as cache hits, e.g. {misses[0]}"
        )
    return seen


# Headers the ASGI server adds to every response itself: the ceilings get them from it too.
_SERVER_HEADERS = frozenset({"date", "server", "content-length"})


def prepared(seen: dict[str, tuple[int, dict[str, str], bytes]]) -> dict[str, object]:
    """hexmarket's answers as the ceilings' data: per path, the body and the headers sent."""
    responses = {
        path: [body.decode(), [[k, v] for k, v in headers.items() if k not in _SERVER_HEADERS]]
        for path, (_, headers, body) in seen.items()
    }
    return {"responses": responses}


@attrs.frozen(kw_only=True)
class Contest:
    """Per contender (hexmarket, the raw ASGI ceiling, bare Litestar): req/s and p99 (ms)."""

    rps: dict[str, Stat]
    p99: dict[str, Stat]


def _compare(
    bench: Bench, servers: list[HttpServer], paths: list[str], connections: int
) -> Contest:
    """Warm up each, then alternate runs of every server, in the same order each round."""
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    p99: dict[str, list[float]] = {s.name: [] for s in servers}
    for i in range(bench.sizes.runs + 1):
        # Run 0 is the warm-up of each, with the warm-up duration; it is not recorded.
        duration = bench.sizes.http_warmup_s if i == 0 else bench.sizes.http_run_s
        for server in servers:
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
                rps[server.name].append(result.requests_per_s)
                p99[server.name].append(result.p99_s * 1000)
    return Contest(
        rps={k: Stat.of(v) for k, v in rps.items()}, p99={k: Stat.of(v) for k, v in p99.items()}
    )


RAW = "raw ASGI callable, same bytes and headers"
LITESTAR = "bare Litestar handler"


def _against_ceilings(
    bench: Bench,
    hexmarket: HttpServer,
    seen: dict[str, tuple[int, dict[str, str], bytes]],
    connections: int,
    *,
    key: str,
    title: str,
    rps: float,
    p99: float,
) -> list[Figure]:
    """Serve hexmarket's answers ``seen`` from the two ceilings, alternate the three servers
    over the same paths, and return the req/s and p99 rows (targets ``rps``, ``p99``)."""
    data = prepared(seen)
    raw = serve_bare(bench, f"raw-{key}", data)
    litestar = serve_bare(bench, f"litestar-{key}", data, factory="create_app")
    with running(raw, litestar):
        contest = _compare(bench, [hexmarket, raw, litestar], list(seen), connections)
    names = (hexmarket.name, raw.name, litestar.name)
    return _figures(contest, names, key=key, title=title, rps=rps, p99=p99)


@attrs.frozen(kw_only=True)
class Rows:
    """What the req/s and p99 rows of one contest say beside the figures themselves."""

    key: str
    title: str
    ceiling_label: str
    reference_label: str
    rps_target: Target | None = None
    p99_target: Target | None = None
    rps_note: str = ""
    p99_note: str = ""


def rps_and_p99(contest: Contest, names: tuple[str, str, str], rows: Rows) -> list[Figure]:
    """The req/s and p99 rows of a contest of ``names``: hexmarket, its ceiling, a reference."""
    hexmarket, ceiling, reference = names
    return [
        Figure(
            key=f"{rows.key}-rps",
            title=rows.title,
            unit="req/s",
            hexmarket=contest.rps[hexmarket],
            ceiling=contest.rps[ceiling],
            ceiling_label=rows.ceiling_label,
            reference=contest.rps[reference],
            reference_label=rows.reference_label,
            target=rows.rps_target,
            note=rows.rps_note,
        ),
        Figure(
            key=f"{rows.key}-p99",
            title=f"{rows.title}: p99",
            unit="ms",
            hexmarket=contest.p99[hexmarket],
            ceiling=contest.p99[ceiling],
            ceiling_label=rows.ceiling_label,
            reference=contest.p99[reference],
            reference_label=rows.reference_label,
            higher_is_better=False,
            target=rows.p99_target,
            note=rows.p99_note,
        ),
    ]


def _figures(
    contest: Contest, names: tuple[str, str, str], *, key: str, title: str, rps: float, p99: float
) -> list[Figure]:
    """The req/s and p99 rows of one route: hexmarket vs the raw ceiling, Litestar for info."""
    rows = Rows(
        key=key,
        title=title,
        ceiling_label=RAW,
        reference_label=LITESTAR,
        rps_target=Target(op=">=", value=rps),
        p99_target=Target(op=">=", value=p99),
        p99_note=(
            f"p99 ratio is ceiling p99 / hexmarket p99 (1.0 = as fast as the ceiling; "
            f"{p99:.2f} = hexmarket's p99 at most {1 / p99:.1f}x the ceiling's, rounded)"
        ),
    )
    return rps_and_p99(contest, names, rows)


def _load_orders(bench: Bench, count: int, run: str) -> tuple[str, list[bytes]]:
    from bench.fig_ingest import load_orders

    dsn = bench.fresh_database("orders")
    messages = order_messages(count, run=run)
    load_orders(dsn, messages, batch=bench.sizes.copy_batch)
    return dsn, messages


def _cached_orders(bench: Bench, run: str) -> tuple[list[str], dict[str, str]]:
    """``http_paths`` orders in a fresh database: their ``/order/<uid>`` paths, and the env of
    a ``hexmarket serve`` whose LRU cache is warmed with all of them at start."""
    count = bench.sizes.http_paths
    dsn, messages = _load_orders(bench, count, run)
    paths = [f"/order/{json.loads(m)['order_uid']}" for m in messages]
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn,
        HEXMARKET_ORDERS_CACHE="lru",
        HEXMARKET_ORDERS_CACHE_SIZE=str(count * 2),
        HEXMARKET_ORDERS_WARM_COUNT=str(count),
    )
    return paths, env


def order_get(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.orders", "the orders HTTP route")
    paths, env = _cached_orders(bench, "g")
    hexmarket = serve(bench, "hexmarket-orders", env)
    with running(hexmarket):
        seen = all_cache_hits(hexmarket, paths)
        return _against_ceilings(
            bench,
            hexmarket,
            seen,
            ORDER_CONNECTIONS,
            key="order-get",
            title=f"GET /order/{{uid}} cache hit, {ORDER_CONNECTIONS} conns",
            rps=0.8,
            p99=0.67,  # p99 at most 1.5x the ceiling's
        )


def server_choice(bench: Bench) -> list[Figure]:
    """The ASGI server under the hot path: hexmarket's app and the raw ceiling, each under
    uvicorn (``hexmarket serve``'s server) and granian (1 worker), alternated; for information."""
    require_module("granian", "granian")
    paths, env = _cached_orders(bench, "s")
    uvicorn_app = serve(bench, "hexmarket-uvicorn", env)
    with running(uvicorn_app):
        fetch_all(uvicorn_app, paths)
        data = prepared(fetch_all(uvicorn_app, paths))
        data_file = bench.workdir / "granian-raw.json"
        data_file.write_text(json.dumps(data))
        granian_app = serve_granian(bench, "hexmarket-granian", "hexmarket_app", env)
        raw_uvicorn = serve_bare(bench, "raw-uvicorn", data)
        raw_granian = serve_granian(
            bench, "raw-granian", "create_raw_app", {"BENCH_BARE_DATA": str(data_file)}
        )
        two = serve(bench, "hexmarket-workers-2", {**env, "HEXMARKET_HTTP_WORKERS": "2"})
        raw_two = serve_bare(bench, "raw-workers-2", data, workers=2)
        with running(granian_app, raw_uvicorn, raw_granian, two, raw_two):
            fetch_all(granian_app, paths)
            contest = _compare(
                bench,
                [uvicorn_app, granian_app, raw_uvicorn, raw_granian, two, raw_two],
                paths,
                ORDER_CONNECTIONS,
            )
    title = f"GET /order/{{uid}} cache hit, {ORDER_CONNECTIONS} conns"
    return [
        Figure(
            key="server-hexmarket",
            title=f"{title}: hexmarket under uvicorn (hexmarket serve) vs granian",
            unit="req/s",
            hexmarket=contest.rps[uvicorn_app.name],
            ceiling=contest.rps[granian_app.name],
            ceiling_label="the same app under granian, 1 worker",
            note="informative: which server hexmarket serve should run on",
        ),
        Figure(
            key="server-raw",
            title=f"{title}: raw ASGI ceiling under uvicorn vs granian",
            unit="req/s",
            hexmarket=contest.rps[raw_uvicorn.name],
            ceiling=contest.rps[raw_granian.name],
            ceiling_label="the raw ceiling under granian, 1 worker",
            note="informative: what each server itself can do",
        ),
        Figure(
            key="server-workers",
            title=f"{title}: hexmarket serve --workers 2",
            unit="req/s",
            hexmarket=contest.rps[two.name],
            ceiling=contest.rps[raw_two.name],
            ceiling_label="the raw ceiling under uvicorn --workers 2",
            reference=contest.rps[uvicorn_app.name],
            reference_label="hexmarket serve, 1 worker",
            note="informative: two cores for the server (wrk shares them on this machine)",
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
        return _against_ceilings(
            bench,
            hexmarket,
            seen,
            LIST_CONNECTIONS,
            key="goods-list",
            title=f"GET /goods/list from Redis, {LIST_CONNECTIONS} conns",
            rps=0.6,
            p99=0.5,  # p99 at most 2x the ceiling's
        )


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


def _fill(bench: Bench, server: HttpServer, paths: list[str]) -> float:
    """Request every path once (wrk in slices, each continuing where the last stopped).

    Returns the request rate of the slices that held nothing but first requests (cache misses);
    the last slice wraps around to paths already asked for, so it counts only when it is the
    only one (a smoke run)."""
    script = bench.workdir / "fill.lua"
    script.write_text(FILL_SCRIPT)
    listing = bench.workdir / "fill.txt"
    listing.write_text("\n".join(paths) + "\n")
    done = 0
    pure: list[tuple[int, float]] = []
    last = 0.0
    while done < len(paths):
        argv = [wrk.ensure_installed(), "-t1", "-c16", "-d3s", "--timeout=10s"]
        argv += ["-s", str(script), server.base_url, "--", str(listing), str(done)]
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
        result = wrk.parse(ran.stdout)
        if result.errors or result.requests <= 16:
            raise ProcessError(f"filling the cache: {ran.stdout}")
        if done + result.requests <= len(paths):
            pure.append((result.requests, result.duration_s))
        last = min(result.requests, len(paths) - done) / result.duration_s
        # Requests still in flight when wrk stopped are not counted: they may be unanswered.
        done += max(0, result.requests - 16)
    if not pure:
        return last
    return sum(n for n, _ in pure) / sum(t for _, t in pure)


async def _same_query(dsn: str, uids: list[str]) -> float:
    """Queries/s of the order read on a miss, issued straight from psycopg by 16 tasks."""
    from adapters.postgres.orders import _GET

    async def reader(part: list[str]) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            for uid in part:
                await (await conn.execute(_GET, (uid,))).fetchall()

    began = time.perf_counter()
    await asyncio.gather(*(reader(uids[i::16]) for i in range(16)))
    return len(uids) / (time.perf_counter() - began)


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
    misses: list[float] = []
    queries: list[float] = []
    rng = random.Random(7)
    uids = [p.removeprefix("/order/") for p in paths[200:]]
    for run in range(bench.sizes.runs):
        server = serve(bench, f"hexmarket-memory-{run}", env)
        with running(server):
            fetch_all(server, paths[:200] * 2)  # the code paths are warm, 200 orders cached
            before = server.rss_bytes()
            misses.append(_fill(bench, server, paths[200:]))  # each a miss: one query
            # each once more, a hit: what the front keeps with an entry (its prepared headers,
            # made on an order's first hit) is in the figure too
            _fill(bench, server, paths[200:])
            after = server.rss_bytes()
            sample = fetch_all(server, rng.sample(paths, min(50, len(paths))))
            if any(h.get("x-cache") != "hit" for _, h, _ in sample.values()):
                raise ProcessError("orders were evicted: the cache did not hold them all")
            per_order.append((after - before) / (len(paths) - 200) / 1024)
        queries.append(asyncio.run(_same_query(dsn, uids)))  # alternating with the server runs
    return [
        Figure(
            key="order-miss",
            title=f"GET /order/{{uid}} cache miss ({len(uids):,} distinct ids, 16 conns)",
            unit="req/s",
            hexmarket=Stat.of(misses),
            ceiling=Stat.of(queries),
            ceiling_label="the same SELECT from psycopg, 16 connections",
            note="a cold LRU cache: each request reads Postgres once and caches the document",
        ),
        Figure(
            key="memory-per-order",
            title=f"memory per cached order ({count:,} orders, RSS delta)",
            unit="KB",
            hexmarket=Stat.of(per_order),
            target=Target(op="<=", value=2.0, kind="absolute"),
            higher_is_better=False,
            note=f"mean order document {sum(map(len, messages)) / len(messages) / 1024:.2f} KB",
        ),
    ]


__all__ = ["HOST", "goods_list", "memory", "order_get", "server_choice"]
