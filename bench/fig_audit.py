"""Audit events end to end: outbox -> relay -> NATS JetStream -> log writer -> ClickHouse,
against the ceiling of a NATS ``publish_async`` of the same events with 1,000 in flight."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import UTC, datetime

import psycopg

from bench.context import Bench
from bench.hexmarket import require_module, worker_argv
from bench.procs import Child, await_line, gated_run
from bench.report import Figure
from bench.stats import Target

IN_FLIGHT = 1000
LOG_TABLE = "hexmarket.goods_events FINAL"


def _events(count: int) -> list[tuple[uuid.UUID, bytes]]:
    """``count`` create events of distinct goods, encoded as the catalog encodes them."""
    from core.catalog.events import GoodEvent
    from core.catalog.models import Good

    now = datetime.now(UTC)
    out = []
    for n in range(1, count + 1):
        good = Good(
            id=n,
            project_id=1,
            name=f"good {n}",
            description="made by the benchmark",
            priority=n,
            removed=False,
            created_at=now,
        )
        event = GoodEvent.of(good, "create", event_id=uuid.uuid4(), event_time=now)
        out.append((event.event_id, event.to_json()))
    return out


def _fill_outbox(dsn: str, topic: str, events: list[tuple[uuid.UUID, bytes]]) -> None:
    """The outbox as ``count`` committed changes leave it (the goods rows are not needed by
    the relay, which reads only the outbox)."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY outbox (event_id, topic, key, payload) FROM STDIN") as copy:
            for event_id, payload in events:
                copy.write_row((event_id, topic, str(event_id), payload))
        conn.commit()


async def _publish(url: str, subject: str, events: list[tuple[uuid.UUID, bytes]]) -> float:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=IN_FLIGHT)
        stream = subject.replace(".", "_").upper()
        await js.add_stream(name=stream, subjects=[subject])
        began = time.perf_counter()
        futures = [
            await js.publish_async(subject, payload, headers={"Nats-Msg-Id": str(event_id)})
            for event_id, payload in events
        ]
        await asyncio.wait_for(js.publish_async_completed(), 120)
        seconds = time.perf_counter() - began
        for future in futures:
            future.result()  # every publish acknowledged, none failed
        return len(events) / seconds
    finally:
        await nc.close()


def _end_to_end(bench: Bench, count: int) -> float:
    events = _events(count)
    dsn = bench.fresh_database("audit")
    subject = bench.token("bench.events")
    stream = subject.replace(".", "_").upper()
    _fill_outbox(dsn, subject, events)
    common = {
        "HEXMARKET_EVENTS_BROKER": "nats",
        "HEXMARKET_EVENTS_TOPIC": subject,
        "HEXMARKET_EVENTS_STREAM": stream,
        "HEXMARKET_EVENTS_GROUP": bench.token("bench-logs-"),
        "HEXMARKET_LOG_STORE": "clickhouse",
        "HEXMARKET_POSTGRES_URL": dsn,
    }
    relay = Child(
        "relay",
        worker_argv("relay-outbox"),
        env=bench.env(**common),
        log_dir=bench.logs,
        stdin=subprocess.PIPE,
    )
    writer = Child(
        "write-logs",
        [*worker_argv("write-logs"), "--expect", str(count), "--count", LOG_TABLE],
        env=bench.env(**common),
        log_dir=bench.logs,
        stdin=subprocess.PIPE,
    )
    try:
        await_line(relay, "ready", timeout_s=120)
        # The relay is told to go by gated_run, once the writer is ready too.
        return count / gated_run(writer, timeout_s=120 if bench.smoke else 600, also=[relay])
    finally:
        writer.stop()
        relay.stop()


def audit(bench: Bench) -> list[Figure]:
    require_module("entrypoints.workers.relay", "the outbox relay")
    require_module("entrypoints.workers.logwriter", "the log writer")
    count = bench.sizes.audit_events
    url = bench.stack.nats_url()

    def ceiling() -> float:
        return asyncio.run(_publish(url, bench.token("bench.publish"), _events(count)))

    hex_rates, publish_rates = bench.alternate(
        lambda: _end_to_end(bench, count),
        ceiling,
        warm_hexmarket=lambda: _end_to_end(bench, max(100, count // 10)),
    )
    return [
        Figure(
            key="audit",
            title=f"audit events outbox -> NATS -> ClickHouse ({count:,})",
            unit="events/s",
            hexmarket=hex_rates,
            ceiling=publish_rates,
            ceiling_label=f"NATS publish_async, {IN_FLIGHT:,} in flight",
            target=Target(op=">=", value=0.3),
            note="relay and log writer in separate processes (like production); "
            "time from their start to the last event readable in ClickHouse",
        )
    ]
