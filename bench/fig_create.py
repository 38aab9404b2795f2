"""Catalog writes.

- ``POST /good/create`` under 32 connections against the ceiling of the same two INSERTs (the
  good, its outbox event) per transaction from 32 psycopg tasks with no lock at all; 0
  duplicate priorities are checked after every run.
- A mixed write load (creates, updates, removes, reprioritizes over two projects) from 32
  connections: req/s and p99, every answer a 200 or the figure does not count.
- The cost of one reprioritize to 1 in a table of 100,000 goods: time, rows shifted, outbox
  events written (each checked against the row it records)."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench import wrk
from bench.context import Bench
from bench.hexmarket import HOST, require_module, serve
from bench.procs import HttpServer, ProcessError, running
from bench.report import Figure
from bench.stats import Stat, Target

CONNECTIONS = 32
# hexmarket's pool as large as the ceiling's: both may have 32 transactions in flight.
POOL_SIZE = str(CONNECTIONS)

POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"name":"bench good","description":"made by wrk"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _post_once(bench: Bench, server: HttpServer, duration: float) -> float:
    script = bench.workdir / "post.lua"
    script.write_text(POST_SCRIPT)
    result = wrk.run(
        f"{server.base_url}/good/create?projectId=1",
        connections=CONNECTIONS,
        duration_s=duration,
        workdir=bench.workdir,
        script=script,
    )
    if result.errors:
        raise ProcessError(
            f"POST /good/create: {result.non_2xx_3xx} non-2xx/3xx, sockets {result.socket_errors}"
        )
    return result.requests_per_s


def _duplicate_priorities(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) - count(DISTINCT priority) FROM goods").fetchone()
    return int(row[0]) if row else 0


async def _direct(dsn: str, transactions: int, topic: str = "goods.events") -> float:
    """The ceiling: per transaction the same two INSERTs as a create (the good with the next
    priority, its outbox event), from ``CONNECTIONS`` tasks, with no lock and no project
    check; returns transactions per second."""
    from psycopg_pool import AsyncConnectionPool

    from adapters.postgres.catalog import PRIORITY_SEQUENCE
    from core.catalog.events import GoodEvent
    from core.catalog.models import Good

    remaining = transactions

    async def one(pool: AsyncConnectionPool[Any]) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO goods (project_id, name, description, priority)"
                    f" VALUES (%s, %s, %s, nextval('{PRIORITY_SEQUENCE}'))"
                    " RETURNING id, project_id, name, description, priority, removed, created_at",
                    (1, "bench good", "made by psycopg"),
                )
                row = await cur.fetchone()
                assert row is not None
                good = Good(
                    id=row[0],
                    project_id=row[1],
                    name=row[2],
                    description=row[3],
                    priority=row[4],
                    removed=row[5],
                    created_at=row[6],
                )
                event = GoodEvent.of(
                    good, "create", event_id=uuid.uuid4(), event_time=datetime.now(UTC)
                )
                await conn.execute(
                    "INSERT INTO outbox (event_id, topic, key, payload)"
                    " SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bytea[])",
                    ([event.event_id], [topic], [str(event.event_id)], [event.to_json()]),
                )

    async with AsyncConnectionPool(
        dsn, min_size=CONNECTIONS, max_size=CONNECTIONS, open=False
    ) as pool:
        await pool.wait(timeout=30)
        began = time.perf_counter()
        await asyncio.gather(*(one(pool) for _ in range(CONNECTIONS)))
        return transactions / (time.perf_counter() - began)


def good_create(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.catalog", "the catalog HTTP routes")
    dsn = bench.fresh_database("create")
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn, HEXMARKET_LIST_CACHE="redis", HEXMARKET_PG_POOL_SIZE=POOL_SIZE
    )
    server = serve(bench, "hexmarket-create", env)
    duplicates: list[int] = []

    def checked(measure: Any) -> Any:
        def run() -> float:
            rate = float(measure())
            duplicates.append(_duplicate_priorities(dsn))
            return rate

        return run

    with running(server):
        hex_rates, direct_rates = bench.alternate(
            checked(lambda: _post_once(bench, server, bench.sizes.http_run_s)),
            checked(lambda: asyncio.run(_direct(dsn, bench.sizes.create_direct_tx))),
            warm_hexmarket=lambda: _post_once(bench, server, bench.sizes.http_warmup_s),
            warm_ceiling=lambda: asyncio.run(_direct(dsn, bench.sizes.create_direct_tx // 4)),
        )
    if any(duplicates):
        raise ProcessError(f"duplicate priorities after the runs: {duplicates}")
    return [
        Figure(
            key="good-create",
            title=f"POST /good/create, {CONNECTIONS} conns (outboxed tx)",
            unit="req/s",
            hexmarket=hex_rates,
            ceiling=direct_rates,
            ceiling_label=f"same 2 INSERTs/tx, no lock, psycopg, {CONNECTIONS} tasks",
            target=Target(op=">=", value=0.7),
            note="0 duplicate priorities after every run (checked in the table)",
        )
    ]


# --- the mixed write load --------------------------------------------------------------------

# Each wrk thread edits random goods among the first EDITABLE (never removed) and removes goods
# of its own stride of the removable ones, each once: every request has a 200 answer.
MIXED_SCRIPT = """
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local json = {{["Content-Type"] = "application/json"}}
local next_remove
function init(args)
  local t = tonumber(tid) or 0
  next_remove = {editable} + 1 + t
  math.randomseed(7919 * (t + 1))
end
local function project(id) return 1 + id % 2 end
function request()
  local r = math.random()
  if r < {create} then
    local p = math.random(1, 2)
    return wrk.format("POST", "/good/create?projectId=" .. p, json, '{{"name":"mixed"}}')
  elseif r < {update} then
    local id = math.random(1, {editable})
    return wrk.format("PATCH", "/good/update?id=" .. id .. "&projectId=" .. project(id), json,
      '{{"name":"renamed ' .. math.random(1, 1000000) .. '"}}')
  elseif r < {remove} and next_remove <= {last} then
    local id = next_remove
    next_remove = next_remove + {threads}
    return wrk.format("DELETE", "/good/remove?id=" .. id .. "&projectId=" .. project(id))
  else
    local id = math.random(1, {editable})
    return wrk.format("PATCH", "/good/reprioritize?id=" .. id .. "&projectId=" .. project(id),
      json, '{{"newPriority":' .. math.random(1, {top}) .. '}}')
  end
end
"""
MIX = {"create": 0.3, "update": 0.75, "remove": 0.9}  # cumulative; reprioritize the rest
THREADS = 2


def _seed(dsn: str, goods: int) -> None:
    """A fresh catalog: goods 1..``goods`` at priorities 1..``goods``, odd ids in project 2
    (which must exist)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE goods, outbox RESTART IDENTITY")
        conn.execute(
            "INSERT INTO goods (id, project_id, name, description, priority)"
            " SELECT n, 1 + n %% 2, 'seed ' || n, '', nextval('goods_priority_seq')"
            " FROM generate_series(1, %s) n",
            (goods,),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('goods', 'id'), %s)", (goods,))
        conn.execute("VACUUM ANALYZE goods")


def _retries(server: HttpServer) -> float:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found = re.search(r"^hexmarket_catalog_write_retries_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def good_writes(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.catalog", "the catalog HTTP routes")
    dsn = bench.fresh_database("writes")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('second')")
    editable = bench.sizes.mixed_goods // 3
    removable = bench.sizes.mixed_goods - editable
    script = bench.workdir / "mixed.lua"
    script.write_text(
        MIXED_SCRIPT.format(
            editable=editable,
            last=editable + removable,
            top=editable + removable,
            threads=THREADS,
            **MIX,
        )
    )
    env = bench.env(
        HEXMARKET_POSTGRES_URL=dsn, HEXMARKET_LIST_CACHE="redis", HEXMARKET_PG_POOL_SIZE=POOL_SIZE
    )
    server = serve(bench, "hexmarket-writes", env)
    p99s: list[float] = []

    def once(duration: float, record: bool) -> float:
        _seed(dsn, editable + removable)
        result = wrk.run(
            f"{server.base_url}/good/create?projectId=1",
            connections=CONNECTIONS,
            duration_s=duration,
            threads=THREADS,
            workdir=bench.workdir,
            script=script,
            timeout_s=30,
        )
        if result.errors:
            raise ProcessError(
                f"mixed writes: {result.non_2xx_3xx} non-2xx/3xx,"
                f" sockets {result.socket_errors} (0 errors required)"
            )
        if _duplicate_priorities(dsn):
            raise ProcessError("mixed writes: duplicate priorities")
        if record:
            p99s.append(result.p99_s * 1000)
        return result.requests_per_s

    with running(server):
        rates, _ = bench.alternate(
            lambda: once(bench.sizes.http_run_s, True),
            None,
            warm_hexmarket=lambda: once(bench.sizes.http_warmup_s, False),
        )
        retries = _retries(server)
    mix = (
        f"30 % create, 45 % update, 15 % remove, 10 % reprioritize to a random priority in"
        f" 1..{editable + removable}, over 2 projects, on {editable + removable:,} goods"
        f" reseeded per run; every answer a 200; retries after a conflict: {retries:g}"
    )
    return [
        Figure(
            key="good-writes",
            title=f"catalog writes mixed, {CONNECTIONS} conns",
            unit="req/s",
            hexmarket=rates,
            note=mix,
        ),
        Figure(
            key="good-writes-p99",
            title=f"catalog writes mixed, {CONNECTIONS} conns, p99",
            unit="ms",
            hexmarket=Stat.of(p99s),
            higher_is_better=False,
        ),
    ]


# --- one reprioritize to 1 in a large table --------------------------------------------------


def _patch(server: HttpServer, path: str, body: dict[str, int]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    try:
        conn.request("PATCH", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def reprioritize_cost(bench: Bench) -> list[Figure]:
    require_module("entrypoints.http.catalog", "the catalog HTTP routes")
    goods = bench.sizes.reprioritize_goods
    dsn = bench.fresh_database("reprioritize")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('second')")
    _seed(dsn, goods)
    env = bench.env(HEXMARKET_POSTGRES_URL=dsn, HEXMARKET_LIST_CACHE="redis")
    server = serve(bench, "hexmarket-reprioritize", env)
    shifted: list[int] = []
    events: list[int] = []

    def once() -> float:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT id, project_id, (SELECT coalesce(max(id), 0) FROM outbox)"
                " FROM goods ORDER BY priority DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        last, project, outbox_before = row
        began = time.perf_counter()
        status, body = _patch(
            server, f"/good/reprioritize?id={last}&projectId={project}", {"newPriority": 1}
        )
        seconds = time.perf_counter() - began
        if status != 200:
            raise ProcessError(f"reprioritize: {status} {body[:300]!r}")
        changes = json.loads(body)["priorities"]
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                # every new event records its good's priority as it is now
                "SELECT count(*), count(*) FILTER (WHERE g.priority = (e.doc->>'priority')::int"
                "   AND e.doc->>'type' = 'reprioritize')"
                " FROM (SELECT convert_from(payload, 'UTF8')::json AS doc FROM outbox"
                "       WHERE id > %s) e"
                " JOIN goods g ON g.id = (e.doc->>'id')::int",
                (outbox_before,),
            ).fetchone()
        assert row is not None
        written, correct = row
        if not (len(changes) == goods == written == correct):
            raise ProcessError(
                f"reprioritize to 1 of {goods:,} goods: {len(changes)} changes answered,"
                f" {written} events written, {correct} of them right"
            )
        shifted.append(len(changes))
        events.append(written)
        return seconds

    with running(server):
        took, _ = bench.alternate(once, None)
    return [
        Figure(
            key="reprioritize-100k",
            title=f"PATCH /good/reprioritize to 1 among {goods:,} goods",
            unit="s",
            hexmarket=took,
            higher_is_better=False,
            note=(
                f"each run shifted {shifted[-1]:,} goods (all of them: the last moves to 1)"
                f" and wrote {events[-1]:,} outbox events, each checked against its good;"
                " creates wait for it meanwhile (the priority lock)"
            ),
        )
    ]
