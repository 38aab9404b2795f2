"""``POST /good/create`` under 32 connections (each a locked, outboxed transaction) against
the same SQL transactions issued directly with psycopg from 32 asyncio tasks, no HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import wrk
from bench.context import Bench
from bench.hexmarket import require_module, serve
from bench.procs import HttpServer, ProcessError, running
from bench.report import Figure
from bench.stats import Target

CONNECTIONS = 32

POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"name":"bench good","description":"made by wrk"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _post_once(bench: Bench, server: HttpServer, duration: float) -> float:
    script = bench.workdir / "post.lua"
    script.write_text(POST_SCRIPT)
    argv_url = f"{server.base_url}/good/create?projectId=1"
    result = wrk.run(
        argv_url,
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


async def _direct(dsn: str, transactions: int, topic: str = "goods.events") -> float:
    """The SQL of ``PgCatalogStore`` for one create, from ``CONNECTIONS`` tasks; returns tx/s."""
    from psycopg_pool import AsyncConnectionPool

    from adapters.postgres.catalog import PRIORITY_LOCK
    from core.catalog.events import GoodEvent
    from core.catalog.models import Good

    remaining = transactions

    async def one(pool: AsyncConnectionPool[Any]) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "SELECT id, name, created_at FROM projects WHERE id = %s", (1,)
                )
                await cur.fetchone()
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PRIORITY_LOCK,))
                cur = await conn.execute(
                    "INSERT INTO goods (project_id, name, description, priority)"
                    " SELECT %s, %s, %s, coalesce(max(priority), 0) + 1 FROM goods"
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
    env = bench.env(HEXMARKET_POSTGRES_URL=dsn, HEXMARKET_LIST_CACHE="redis")
    server = serve(bench, "hexmarket-create", env)
    with running(server):
        hex_rates, direct_rates = bench.alternate(
            lambda: _post_once(bench, server, bench.sizes.http_run_s),
            lambda: asyncio.run(_direct(dsn, bench.sizes.create_direct_tx)),
            warm_hexmarket=lambda: _post_once(bench, server, bench.sizes.http_warmup_s),
            warm_ceiling=lambda: asyncio.run(_direct(dsn, bench.sizes.create_direct_tx // 4)),
        )
    return [
        Figure(
            key="good-create",
            title=f"POST /good/create, {CONNECTIONS} conns (locked, outboxed tx)",
            unit="req/s",
            hexmarket=hex_rates,
            ceiling=direct_rates,
            ceiling_label=f"same SQL via psycopg, {CONNECTIONS} tasks",
            target=Target(op=">=", value=0.5),
        )
    ]
