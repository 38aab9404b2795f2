"""The operators' metrics that need no server, on in-memory adapters: dead letters by reason,
retries and their causes (where the core retry policy runs), the caches' hits, misses and
errors as ``/metrics`` exports them, lag and outbox backlog of the in-memory adapters, and the
periodic sampling of the workers' gauges."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.logstore import MemoryLogStore
from adapters.memory.orders import MemoryOrderRepository
from adapters.memory.outbox import MemoryOutboxRelay
from core.audit.logwriter import LogWriter
from core.audit.relay import OutboxRelay
from core.contracts.logstore import event
from core.contracts.orders import example_document, order_from
from core.errors import BrokerUnavailable, CacheUnavailable, LogStoreError, StorageError
from core.orders.ingest import IngestOrders, OrderConsumer
from core.ports.audit import OutboxBacklog
from core.ports.bus import OutgoingMessage
from core.retry import Backoff
from entrypoints import metrics, probes
from entrypoints.container import Container, close_container
from entrypoints.http.app import create_app
from tests.support import BrokenCache, Worker, eventually, memory_settings, running

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "model.json").read_bytes())


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def fast() -> Backoff:
    return Backoff(initial=0.005, maximum=0.02)


async def test_dead_letters_are_counted_by_reason() -> None:
    bus, repo = MemoryEventBus(), MemoryOrderRepository()
    ingest = IngestOrders(repository=repo, publisher=bus, dlq_topic="dlq", clock=FixedClock())
    received = value("hexmarket_orders_received_total")
    batch = ingest.prepare(
        [
            *[_delivery(b"{broken") for _ in range(2)],
            _delivery(b"\xff"),
            _delivery(json.dumps(example_document("ok1")).encode()),
        ]
    )
    report = await ingest.store(batch)
    assert dict(report.reasons) == {"malformed_json": 2, "not_utf8": 1}
    base_json = value("hexmarket_orders_dead_lettered_total", reason="malformed_json")
    base_utf8 = value("hexmarket_orders_dead_lettered_total", reason="not_utf8")
    metrics.record_order_batch(report)
    assert value("hexmarket_orders_dead_lettered_total", reason="malformed_json") == base_json + 2
    assert value("hexmarket_orders_dead_lettered_total", reason="not_utf8") == base_utf8 + 1
    assert value("hexmarket_orders_received_total") == received + 4


def _delivery(data: bytes) -> Any:
    from core.ports.bus import Delivery

    return Delivery(data=data, key=None, source={"stream": "ORDERS", "seq": len(data)})


def test_the_cause_label_is_the_error_class() -> None:
    assert metrics.cause_of(StorageError("x")) == "storage"
    assert metrics.cause_of(BrokerUnavailable("x")) == "broker"
    assert metrics.cause_of(LogStoreError("x")) == "log_store"
    assert metrics.cause_of(CacheUnavailable("x")) == "cache"
    assert metrics.cause_of(TimeoutError()) == "timeout"


class CanBeDown(Protocol):
    available: bool


async def retries_until_recovered(
    worker: Worker, labels: dict[str, str], down: CanBeDown, done: Callable[[], bool]
) -> float:
    """Run ``worker`` with ``down`` unavailable until it has counted two retries under
    ``labels``, then bring ``down`` back and wait for ``done``; the retries counted meanwhile."""
    before = value("hexmarket_retries_total", **labels)
    down.available = False
    async with running(worker):
        await eventually(lambda: value("hexmarket_retries_total", **labels) >= before + 2)
        down.available = True
        await eventually(done)
    return value("hexmarket_retries_total", **labels) - before


async def test_the_orders_consumer_counts_its_retries_by_operation_and_cause() -> None:
    bus, repo = MemoryEventBus(), MemoryOrderRepository()
    await bus.publish("orders", [OutgoingMessage(data=json.dumps(example_document("r1")).encode())])
    consumer = OrderConsumer(
        source=bus,
        topic="orders",
        group="g",
        ingest=IngestOrders(repository=repo, publisher=bus, dlq_topic="dlq", clock=FixedClock()),
        batch_size=10,
        batch_timeout=0.01,
        backoff=fast(),
        on_retry=metrics.retry_hook("consume-orders"),
    )
    counted = await retries_until_recovered(
        consumer,
        {"worker": "consume-orders", "operation": "store", "cause": "storage"},
        repo,
        lambda: consumer.stats.inserted == 1,
    )
    assert counted == consumer.stats.retries


async def test_the_relay_and_the_log_writer_count_their_retries() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    async with store.unit_of_work() as uow:
        await uow.outbox.add([event(good_id=1, seconds=1)])
        await uow.commit()
    relay = OutboxRelay(
        MemoryOutboxRelay(store),
        bus,
        backoff=fast(),
        idle_wait=0.01,
        on_retry=metrics.retry_hook("relay-outbox"),
    )
    await retries_until_recovered(
        relay,
        {"worker": "relay-outbox", "operation": "relay", "cause": "broker"},
        bus,
        lambda: relay.stats.published == 1,
    )

    logs = MemoryLogStore()
    writer = LogWriter(
        bus,
        logs,
        topic="goods.events",
        group="w",
        batch_ms=1,
        idle_wait=0.01,
        backoff=fast(),
        on_retry=metrics.retry_hook("write-logs"),
    )
    await retries_until_recovered(
        writer,
        {"worker": "write-logs", "operation": "store", "cause": "log_store"},
        logs,
        lambda: writer.stats.written == 1,
    )


async def test_both_caches_export_hits_and_misses_and_the_order_cache_its_errors() -> None:
    container = Container(settings=memory_settings())
    await container.orders_repository().add_many([order_from(SAMPLE)])
    uid = SAMPLE["order_uid"]
    async with AsyncTestClient(create_app(container)) as client:
        await client.get("/metrics")  # earlier tests' apps caught up
        before = {
            (name, cache): value(name, cache=cache)
            for name in ("hexmarket_cache_hits_total", "hexmarket_cache_misses_total")
            for cache in ("orders", "goods_list")
        }
        for _ in range(3):
            assert (await client.get(f"/order/{uid}")).status_code == 200
            assert (await client.get("/goods/list")).status_code == 200
        await client.get("/metrics")
        for (name, cache), start in before.items():
            grown = value(name, cache=cache) - start
            if name.endswith("hits_total"):
                assert grown == 2, (name, cache)
            else:
                assert grown == 1, (name, cache)

    broken = Container(settings=memory_settings())
    broken.orders_cache.override(BrokenCache(maxsize=10))
    await broken.orders_repository().add_many([order_from(SAMPLE)])
    async with AsyncTestClient(create_app(broken)) as client:
        await client.get("/metrics")
        errors = value("hexmarket_cache_errors_total", cache="orders")
        assert (await client.get(f"/order/{uid}")).status_code == 200
        body = (await client.get("/metrics")).text
        # the lookup and the fill after the database read both failed
        assert value("hexmarket_cache_errors_total", cache="orders") == errors + 2
        assert 'hexmarket_cache_errors_total{cache="orders"}' in body


async def test_the_in_memory_adapters_report_lag_and_backlog() -> None:
    bus = MemoryEventBus()
    assert await bus.lag("t", "g") == {}
    subscription = await bus.subscribe("t", "g")
    await bus.publish("t", [OutgoingMessage(data=b"%d" % i) for i in range(5)])
    assert await bus.lag("t", "g") == {"0": 5}
    await subscription.ack(await subscription.fetch(3, 0))
    assert await bus.lag("t", "g") == {"0": 2}

    store = MemoryCatalogStore()
    relay_store = MemoryOutboxRelay(store)
    assert await relay_store.backlog() == OutboxBacklog(pending=0, oldest_age=None)
    async with store.unit_of_work() as uow:
        await uow.outbox.add([event(good_id=1, seconds=1), event(good_id=2, seconds=2)])
        await uow.commit()
    backlog = await relay_store.backlog()
    assert backlog.pending == 2
    assert backlog.oldest_age is not None
    assert backlog.oldest_age >= 0


async def test_gauges_are_sampled_periodically_and_stale_partitions_removed() -> None:
    readings = [{"0": 4, "1": 2}, {"0": 0}]
    calls = 0

    async def sample() -> None:
        nonlocal calls
        metrics.set_consumer_lag("t-sampled", "g", readings[min(calls, 1)])
        calls += 1
        if calls == 3:
            raise BrokerUnavailable("a failed sample is logged, the loop goes on")

    async with metrics.sampling(0.01, sample, "test lag"):
        await eventually(lambda: calls >= 5)
    assert value("hexmarket_consumer_lag", topic="t-sampled", group="g", partition="0") == 0
    lag_samples = metrics.REGISTRY.get_sample_value(
        "hexmarket_consumer_lag", {"topic": "t-sampled", "group": "g", "partition": "1"}
    )
    assert lag_samples is None
    metrics.set_outbox_backlog(OutboxBacklog(pending=3, oldest_age=12.5))
    assert value("hexmarket_outbox_oldest_unsent_age_seconds") == 12.5
    metrics.set_outbox_backlog(OutboxBacklog(pending=0, oldest_age=None))
    assert value("hexmarket_outbox_oldest_unsent_age_seconds") == 0


async def test_readiness_is_exported_per_dependency() -> None:
    from entrypoints.devstack import free_port

    settings = memory_settings(list_cache="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    metrics.DEPENDENCY_UP.labels(dependency="redis").set(1)
    container = Container(settings=settings)
    try:
        metrics.set_readiness(await probes.Readiness(container, ["serve"], within=1).results())
    finally:
        await close_container(container)
    assert value("hexmarket_dependency_up", dependency="redis") == 0
    metrics.set_readiness({"redis": None})
    assert value("hexmarket_dependency_up", dependency="redis") == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST"]),
            st.sampled_from(["/order/{order_uid}", "/goods/list"]),
            st.sampled_from([200, 304, 404, 503]),
            st.floats(min_value=0, max_value=10, allow_nan=False)
            | st.sampled_from(metrics.REQUEST_BUCKETS),  # on a bound: counted in its bucket
        ),
        max_size=40,
    )
)
def test_the_request_latency_histogram_is_exposed_as_a_prometheus_histogram(
    observations: list[tuple[str, str, int, float]],
) -> None:
    # the fixed-bucket collector against prometheus_client's own Histogram, same observations:
    # the same text (names, labels, buckets, counts, sums), which dashboards and alerts read
    reference_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        metrics.HTTP_REQUEST_SECONDS.name,
        metrics.HTTP_REQUEST_SECONDS.documentation,
        ["method", "route", "status"],
        buckets=metrics.REQUEST_BUCKETS,
        registry=reference_registry,
    )
    ours = metrics.RequestLatency(
        metrics.HTTP_REQUEST_SECONDS.name,
        metrics.HTTP_REQUEST_SECONDS.documentation,
        metrics.REQUEST_BUCKETS,
    )
    ours_registry.register(ours)
    for method, route, status, seconds in observations:
        reference.labels(method=method, route=route, status=str(status)).observe(seconds)
        ours.observe(method, route, status, seconds)
    assert generate_latest(ours_registry) == generate_latest(reference_registry)


def test_observe_request_counts_into_the_exported_histogram() -> None:
    labels = {"method": "GET", "route": "/test/observe", "status": "201"}
    name = "hexmarket_http_request_duration_seconds"
    before = metrics.REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0
    metrics.observe_request("GET", "/test/observe", 201, time.perf_counter())
    assert metrics.REGISTRY.get_sample_value(f"{name}_count", labels) == before + 1
    assert metrics.REGISTRY.get_sample_value(f"{name}_bucket", {**labels, "le": "+Inf"}) == (
        before + 1
    )
