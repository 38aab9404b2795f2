"""Tracing on real servers, with the SDK's in-memory exporter: one trace follows a catalog change
from the HTTP request through the Postgres outbox, the relay and the broker (NATS JetStream,
Kafka) to the ClickHouse insert; one follows an order from its producer's ``traceparent``
(a client's, or ``produce-orders``'s) to the consumer's commit and acknowledgement."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.ports.bus import OutgoingMessage
from entrypoints.produce import produce_orders
from entrypoints.settings import Settings
from tests.integration import test_audit_e2e as audit
from tests.integration.orders_support import Env, Running, order, produce_on_nats
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.integration.test_audit_e2e import logs_until, ok
from tests.tracing_support import (
    linked_traces,
    named,
    parent_id,
    recording,
    span_id,
    spans_until,
    trace_id,
)

# the servers as the audit trail's and the ingest's end-to-end tests set them up
broker, settings, running = audit.broker, audit.settings, audit.running


@pytest.fixture(autouse=True)
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on before the servers' clients and the HTTP application are built."""
    with recording() as exporter:
        yield exporter


async def test_a_catalog_change_is_one_trace_from_http_to_the_clickhouse_insert(
    spans: InMemorySpanExporter,
    running: tuple[object, object],
    settings: Settings,
) -> None:
    client, _ = running
    topic = settings.events_topic
    await ok(await client.post("/good/create?projectId=1", json={"name": "traced"}))  # type: ignore[attr-defined]
    await logs_until(client, 1)  # type: ignore[arg-type]
    # the batch's process span ends last, after the insert and the ack
    finished = await spans_until(spans, lambda s: bool(named(s, f"process {topic}")))

    (http,) = named(finished, "POST /good/create")
    assert http.kind == SpanKind.SERVER
    assert http.attributes is not None
    assert http.attributes["http.route"] == "/good/create"
    trace = trace_id(http)
    mine = [s for s in finished if trace_id(s) == trace]
    (create,) = named(mine, f"create {topic}")
    (transaction,) = [
        s for s in named(mine, "catalog transaction") if span_id(s) == create.parent.span_id
    ]  # type: ignore[union-attr]
    (process,) = named(mine, f"process {topic}")
    (insert,) = named(mine, "clickhouse insert")
    (ack,) = named(mine, f"ack {topic}")
    assert parent_id(transaction) == span_id(http)
    assert create.kind == SpanKind.PRODUCER
    assert parent_id(process) == span_id(create)
    assert process.kind == SpanKind.CONSUMER
    assert trace in linked_traces(process)
    assert parent_id(insert) == span_id(process)
    assert parent_id(ack) == span_id(process)
    # the relay's broker publish ("send"), under its round, links back to the change
    (relay,) = [s for s in named(finished, "relay outbox") if trace in linked_traces(s)]
    sends = [s for s in named(finished, f"send {topic}") if parent_id(s) == span_id(relay)]
    assert len(sends) == 1
    assert sends[0].kind == SpanKind.PRODUCER

    async with await psycopg.AsyncConnection.connect(str(settings.postgres_url)) as conn:
        cur = await conn.execute("SELECT traceparent FROM outbox")
        rows = await cur.fetchall()
    assert rows == [(f"00-{trace:032x}-{span_id(transaction):016x}-{rows[0][0][-2:]}",)]


async def test_the_front_s_cache_hits_get_a_server_span(
    spans: InMemorySpanExporter,
    running: tuple[object, object],
) -> None:
    client, _ = running
    for _ in range(2):  # a miss, then a hit: both answered by the front, ahead of Litestar
        await ok(await client.get("/goods/list?limit=5"))  # type: ignore[attr-defined]
    finished = await spans_until(spans, lambda s: len(named(s, "GET /goods/list")) >= 2)
    served = named(finished, "GET /goods/list")
    assert {s.kind for s in served} == {SpanKind.SERVER}
    assert all(s.attributes is not None and s.attributes["http.route"] for s in served)


async def test_an_order_is_committed_under_the_trace_of_its_traceparent(
    spans: InMemorySpanExporter,
    env: Env,
) -> None:
    trace, parent = uuid.uuid4().int, uuid.uuid4().int >> 64
    header = f"00-{trace:032x}-{parent:016x}-01"
    topic = env.settings.orders_topic
    uid = f"t{uuid.uuid4().hex[:16]}"
    async with Running(env):
        await env.producer.publish(
            topic, [OutgoingMessage(data=order(uid), key=uid, headers={"traceparent": header})]
        )
        finished = await spans_until(
            spans,
            lambda s: any(trace_id(a) == trace for a in named(s, f"ack {topic}")),
            what="the order's ack",
        )
    assert await env.stored() == 1
    (process,) = [s for s in named(finished, f"process {topic}") if trace_id(s) == trace]
    assert parent_id(process) == parent
    assert linked_traces(process) == {trace}
    assert process.kind == SpanKind.CONSUMER
    (insert,) = [s for s in named(finished, "orders insert") if trace_id(s) == trace]
    (ack,) = [s for s in named(finished, f"ack {topic}") if trace_id(s) == trace]
    assert parent_id(insert) == parent_id(ack) == span_id(process)
    # the client's header travelled as it was: the broker publish did not replace it
    (send,) = [s for s in named(finished, f"send {topic}") if trace_id(s) != trace]
    assert send.kind == SpanKind.PRODUCER


async def test_produce_orders_puts_its_batches_in_one_trace_with_their_commit(
    spans: InMemorySpanExporter,
    env: Env,
) -> None:
    topic = env.settings.orders_topic
    async with Running(env):
        report = await produce_orders(env.producer, topic, count=5, seed=3)
        finished = await spans_until(spans, lambda s: bool(named(s, f"ack {topic}")))
        (produce,) = named(finished, f"produce {topic}")
        assert produce.kind == SpanKind.PRODUCER
        trace = trace_id(produce)
        finished = await spans_until(
            spans,
            lambda s: (
                sum(
                    int(a.attributes["messaging.batch.message_count"])  # type: ignore[index, arg-type]
                    for a in named(s, f"process {topic}")
                    if trace_id(a) == trace
                )
                >= 5
            ),
            what="the five orders' batches",
        )
    assert await env.stored() == report.valid == 5
    processed = [s for s in named(finished, f"process {topic}") if trace_id(s) == trace]
    assert processed
    assert all(parent_id(s) == span_id(produce) for s in processed)


async def test_the_produce_orders_command_traces_when_configured(
    nats_url: str, unique: str, tmp_path: Path
) -> None:
    """The real CLI: ``OTEL_TRACES_EXPORTER=console`` turns tracing on at start-up (service
    ``hexmarket-produce-orders``), and every published order carries its chunk's context."""
    topic = f"orders.{unique}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HEXMARKET_"))}
    out, got = await produce_on_nats(
        nats_url,
        unique,
        tmp_path,
        30,
        "--seed",
        "5",
        env={**clean, "OTEL_TRACES_EXPORTER": "console"},
    )
    assert f'"name": "produce {topic}"' in out
    assert '"service.name": "hexmarket-produce-orders"' in out

    assert len(got) == 30
    carried = {d.headers.get("traceparent") for d in got}
    assert len(carried) == 1  # one chunk, one produce span
    (traceparent,) = carried
    assert traceparent is not None
    assert traceparent.split("-")[1] in out.replace('"0x', '"')  # the span printed above


async def test_a_message_without_context_carries_its_publish_span_s(
    spans: InMemorySpanExporter, env: Env
) -> None:
    topic = env.settings.orders_topic
    await env.producer.publish(topic, [OutgoingMessage(data=b"{}", key="k")])
    (send,) = named(spans.get_finished_spans(), f"send {topic}")
    subscription = await env.producer.subscribe(topic, f"{env.settings.orders_group}-reader")
    try:
        (delivery,) = await subscription.fetch(10, 10.0)
        await subscription.ack([delivery])
    finally:
        await subscription.close()
    traceparent = delivery.headers["traceparent"]
    assert traceparent.startswith(f"00-{trace_id(send):032x}-{span_id(send):016x}-")
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == env.broker
