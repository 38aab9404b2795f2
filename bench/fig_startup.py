"""``consume-orders`` start-up: seconds from the process start to its first committed batch, with
orders already waiting on NATS. For information, the same interpreter importing only the
libraries that job needs (the floor a lean role approaches)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import psycopg

from bench.context import Bench
from bench.data import order_messages
from bench.fig_ingest import _publish_nats
from bench.hexmarket import require_module
from bench.procs import ProcessError
from bench.report import Figure

__all__ = ["consumer_startup"]

#: What storing a batch from NATS needs: no HTTP framework, no ClickHouse, no Redis, no Kafka.
NEEDED = "import psycopg_pool, nats, msgspec, dependency_injector.containers, pydantic_settings"


def _first_commit(bench: Bench, env: dict[str, str], dsn: str) -> float:
    log = (bench.logs / "consumer-startup.log").open("ab")
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.workers.orders_consumer"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            deadline = began + 60
            while conn.execute("SELECT 1 FROM orders LIMIT 1").fetchone() is None:
                if proc.poll() is not None:
                    raise ProcessError(f"consume-orders exited {proc.returncode} before storing")
                if time.perf_counter() > deadline:
                    raise ProcessError("consume-orders stored nothing within 60 s")
                time.sleep(0.002)
        return time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _libraries() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", NEEDED], check=True)  # noqa: S603 - our own argv
    return time.perf_counter() - began


def consumer_startup(bench: Bench) -> list[Figure]:
    require_module("entrypoints.workers.orders_consumer", "the orders consumer")
    bench.logs.mkdir(parents=True, exist_ok=True)
    messages = order_messages(min(1000, bench.sizes.ingest_orders), run="s")
    stream = bench.token("BENCH_STARTUP_")
    subject = f"bench.{stream.lower()}"
    asyncio.run(_publish_nats(bench.stack.nats_url(), stream, subject, messages))

    def hexmarket() -> float:
        dsn = bench.fresh_database("startup")
        env = bench.env(
            HEXMARKET_POSTGRES_URL=dsn,
            HEXMARKET_ORDERS_BROKER="nats",
            HEXMARKET_ORDERS_TOPIC=subject,
            HEXMARKET_ORDERS_STREAM=stream,
            HEXMARKET_ORDERS_DLQ_TOPIC=f"{subject}.dlq",
            HEXMARKET_ORDERS_GROUP=bench.token("bench-startup-"),
        )
        return _first_commit(bench, env, dsn)

    hex_seconds, _ = bench.alternate(hexmarket, None)
    floor, _ = bench.alternate(_libraries, None)
    return [
        Figure(
            key="consumer-startup",
            title="consume-orders start to first committed batch (NATS, orders waiting)",
            unit="s",
            hexmarket=hex_seconds,
            reference=floor,
            reference_label="python importing only psycopg_pool, nats, msgspec,"
            " dependency-injector, pydantic-settings",
            higher_is_better=False,
            note="process start (interpreter, imports, connections) to the first row committed",
        )
    ]
