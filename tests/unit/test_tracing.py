"""Tracing: off by default (nothing of OpenTelemetry imported, no span, no header), the W3C
trace context round trip through message headers, the batch parent/links rule, and one trace
from a traced change through the outbox, the relay and the bus to the log writer's write (on
the in-memory adapters; the real servers' version is tests/integration/test_tracing.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.logstore import MemoryLogStore
from adapters.memory.outbox import MemoryOutboxRelay
from core import tracing
from core.audit.logwriter import LogWriter
from core.audit.relay import OutboxRelay
from core.contracts.logstore import event
from entrypoints import tracing as setup
from entrypoints.settings import Settings
from tests.tracing_support import linked_traces, named, parent_id, recording, span_id, trace_id

ROOT = Path(__file__).parents[2]
TOPIC = "goods.events"

PROBE = """
import json, sys
from entrypoints import cli, runtime
import entrypoints.workers.relay, entrypoints.workers.logwriter, entrypoints.workers.orders_consumer
import adapters.nats_bus, adapters.kafka_bus, adapters.clickhouse_log, adapters.postgres.catalog
import adapters.postgres.orders, adapters.postgres.outbox, entrypoints.produce
settings = cli.load_settings(discover=False)
def otel():
    return sorted({m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")})
workers = otel()
from entrypoints.container import Container
from entrypoints.http.app import create_app
app = create_app(Container(settings=settings))
server = runtime.http_server(app, settings)
print(json.dumps({
    "on": bool(runtime.tracing.exporter_name(settings)),
    "wrapped": server.config.app is not app,
    "workers": workers,
    "http": otel(),
}))
"""


def probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HEXMARKET_"))}
    ran = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **clean,
            "PYTHONPATH": str(ROOT / "src"),
            "HEXMARKET_CATALOG_STORE": "memory",
            "HEXMARKET_ORDERS_STORE": "memory",
            "HEXMARKET_LIST_CACHE": "lru",
            **env,
        },
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(ran.stdout.splitlines()[-1])
    return result


def test_off_by_default_nothing_of_opentelemetry_is_imported_and_http_is_unwrapped() -> None:
    got = probe()
    assert (got["on"], got["wrapped"]) == (False, False)
    assert got["workers"] == []  # the workers, adapters and core: not a module of it
    # Litestar itself probes for its OpenTelemetry plugin at start (it loads a module or two
    # of the API when installed); the SDK and the exporter stay unloaded.
    assert {"sdk", "exporter"}.isdisjoint(got["http"])  # type: ignore[arg-type]


def test_an_exporter_turns_it_on_the_sdk_loads_and_requests_get_spans() -> None:
    got = probe(OTEL_TRACES_EXPORTER="console")
    assert (got["on"], got["wrapped"]) == (True, True)
    assert "sdk" in got["workers"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, "otlp"),
        ({"HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318"}, None),
    ],
)
def test_which_variables_turn_tracing_on(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "HEXMARKET_OTEL_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert setup.exporter_name(Settings(_env_file=None)) == expected


def test_off_the_facade_is_one_shared_no_op() -> None:
    assert tracing.tracer() is None
    assert tracing.span("a") is tracing.span("b", kind="consumer")
    assert tracing.process_span("t", "g", [{"traceparent": "x"}], 1) is tracing.span("c")
    assert tracing.send_span("nats", "t", 1) is tracing.span("c")
    with tracing.span("a") as span:
        assert span.headers() == {}
    assert tracing.traceparent() is None


_ids = st.tuples(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1))


@given(ids=_ids, sampled=st.booleans())
def test_a_traceparent_header_round_trips(ids: tuple[int, int], sampled: bool) -> None:
    trace, parent = ids
    header = f"00-{trace:032x}-{parent:016x}-{'01' if sampled else '00'}"
    with recording() as exporter:
        tracer = tracing.tracer()
        assert tracer is not None
        with tracer.span("child", parent={"traceparent": header}) as span:
            carried = dict(span.headers())
            assert tracing.traceparent() == carried["traceparent"]
        with tracer.span("grandchild", parent=carried):
            pass
    finished = exporter.get_finished_spans()
    if not sampled:  # a parent that was not sampled: neither are its children (parent-based)
        assert finished == ()
        return
    child, grandchild = named(finished, "child")[0], named(finished, "grandchild")[0]
    assert trace_id(child) == trace_id(grandchild) == trace
    assert parent_id(child) == parent
    assert parent_id(grandchild) == span_id(child)
    assert carried["traceparent"] == f"00-{trace:032x}-{span_id(child):016x}-01"


@pytest.mark.parametrize("garbage", ["", "nonsense", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_an_invalid_traceparent_is_ignored(garbage: str) -> None:
    with recording() as exporter:
        with tracing.span("outer"), tracing.span("inner", parent={"traceparent": garbage}):
            pass
        with tracing.process_span("t", "g", [{"traceparent": garbage}], 1):
            pass
    spans = exporter.get_finished_spans()
    outer, inner = named(spans, "outer")[0], named(spans, "inner")[0]
    assert parent_id(inner) == span_id(outer)  # the current span, not a broken parent
    (process,) = named(spans, "process t")
    assert process.parent is None
    assert process.links == ()


def _header(trace: int, span: int) -> dict[str, str]:
    return {"traceparent": f"00-{trace:032x}-{span:016x}-01"}


def test_a_batch_span_links_every_context_and_joins_a_shared_one() -> None:
    with recording() as exporter:
        with tracing.process_span("t", "g", [_header(1, 1), _header(1, 1), {}], 3):
            pass
        with tracing.process_span("u", "g", [_header(1, 1), _header(2, 2), _header(1, 1)], 3):
            pass
    spans = exporter.get_finished_spans()
    (shared,) = named(spans, "process t")
    assert trace_id(shared) == 1
    assert parent_id(shared) == 1
    assert len(shared.links) == 1
    (mixed,) = named(spans, "process u")
    assert mixed.parent is None
    assert linked_traces(mixed) == {1, 2}
    assert len(mixed.links) == 2
    assert mixed.attributes is not None
    assert mixed.attributes["messaging.batch.message_count"] == 3


async def _change_to_log(store: MemoryCatalogStore, bus: MemoryEventBus) -> MemoryLogStore:
    """One traced change recorded in the outbox, relayed, and written by the log writer."""
    with tracing.span("change"):
        async with store.unit_of_work() as uow:
            await uow.outbox.add([event(good_id=1)])
            await uow.commit()
    assert await OutboxRelay(MemoryOutboxRelay(store), bus).relay_once() == 1
    logs = MemoryLogStore()
    writer = LogWriter(bus, logs, topic=TOPIC, group="logs")
    subscription = await bus.subscribe(TOPIC, "logs")
    batch = await writer.collect(subscription)
    assert len(batch) == 1
    assert await writer.write_and_ack(subscription, batch, asyncio.Event())
    return logs


async def test_one_trace_from_a_change_through_outbox_relay_and_bus_to_the_log_write() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    with recording() as exporter:
        await _change_to_log(store, bus)
    (record,) = store.outbox_records()
    spans = exporter.get_finished_spans()
    (change,) = named(spans, "change")
    (create,) = named(spans, f"create {TOPIC}")
    (process,) = named(spans, f"process {TOPIC}")
    (ack,) = named(spans, f"ack {TOPIC}")
    (relay,) = named(spans, "relay outbox")
    assert record.traceparent is not None
    assert record.traceparent.startswith(f"00-{trace_id(change):032x}-{span_id(change):016x}-")
    assert parent_id(create) == span_id(change)
    assert parent_id(process) == span_id(create)
    assert parent_id(ack) == span_id(process)
    assert {trace_id(s) for s in (change, create, process, ack)} == {trace_id(change)}
    assert linked_traces(relay) == {trace_id(change)}


async def test_off_no_context_is_stored_or_sent() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    logs = await _change_to_log(store, bus)
    assert [r.traceparent for r in store.outbox_records()] == [None]
    subscription = await bus.subscribe(TOPIC, "another")
    (delivery,) = await subscription.fetch(10, 0.1)
    assert "traceparent" not in delivery.headers
    assert len(await logs.query()) == 1


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        Settings(_env_file=None, HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT="jaeger:4318")


def no_route(path: str) -> str | None:
    """``wrap_asgi``'s ``route_of`` for an app the front does not answer for: the span is named
    by the route the app's router sets (``path_template``)."""
    return None


async def test_a_request_s_traceparent_parents_its_server_span_named_by_route() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        scope["path_template"] = "/things/{id}"  # as Litestar's router sets it
        await send({"type": "http.response.start", "status": 503, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # type: ignore[operator]

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    header = f"00-{7:032x}-{9:016x}-01"
    with recording() as exporter:
        wrapped = setup.wrap_asgi(app, no_route)
        assert wrapped is not app
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/things/1",
            "headers": [(b"host", b"x"), (b"traceparent", header.encode())],
        }
        await wrapped(scope, None, send)
    assert setup.wrap_asgi(app, no_route) is app  # off again: unwrapped
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /things/{id}"
    assert (trace_id(span), parent_id(span)) == (7, 9)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert not span.status.is_ok
