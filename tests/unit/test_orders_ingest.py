"""The ingest use case and consume loop on the in-memory bus and repository."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.bus import MemoryEventBus
from adapters.memory.orders import MemoryOrderRepository
from core.contracts.orders import example_document
from core.orders.ingest import IngestOrders, OrderConsumer
from core.ports.bus import OutgoingMessage
from core.retry import Backoff
from tests.support import eventually, running

TOPIC, DLQ, GROUP = "orders", "orders.dlq", "hexmarket-orders"
SAMPLE = (Path(__file__).parents[1] / "data" / "model.json").read_bytes()


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def consumer_of(
    source: Any,
    repository: Any,
    bus: MemoryEventBus,
    batch_size: int,
    backoff: Backoff | None = None,
) -> OrderConsumer:
    """An order consumer of ``TOPIC`` for ``GROUP`` reading ``source`` (batches of ``batch_size``
    or 10 ms), storing in ``repository``, dead-lettering to ``DLQ`` on ``bus``."""
    ingest = IngestOrders(repository=repository, publisher=bus, dlq_topic=DLQ, clock=FixedClock())
    return OrderConsumer(
        source=source,
        topic=TOPIC,
        group=GROUP,
        ingest=ingest,
        batch_size=batch_size,
        batch_timeout=0.01,
        backoff=backoff,
    )


class Harness:
    def __init__(self) -> None:
        self.bus = MemoryEventBus(dedupe_by_key=False)
        self.repo = MemoryOrderRepository()
        self.stop = asyncio.Event()
        self.consumer = self.new_consumer()
        self.task: asyncio.Task[Any] | None = None

    def new_consumer(self) -> OrderConsumer:
        backoff = Backoff(initial=0.001, maximum=0.01, rng=random.Random(1))
        return consumer_of(self.bus, self.repo, self.bus, 7, backoff)

    async def publish(self, *payloads: bytes) -> None:
        await self.bus.publish(TOPIC, [OutgoingMessage(data=p) for p in payloads])

    def start(self) -> None:
        self.task = asyncio.create_task(self.consumer.run(self.stop))

    async def finish(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.bus.messages(DLQ)]

    async def unacked(self) -> int:
        probe = await self.bus.subscribe(TOPIC, GROUP)
        try:
            return len(await probe.fetch(10_000, 0))
        finally:
            await probe.close()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    h.stop.set()
    if h.task is not None and not h.task.done():
        await asyncio.wait_for(h.task, 5)


def order(uid: str, variant: int = 0) -> bytes:
    return json.dumps(example_document(uid, variant)).encode()


async def test_valid_orders_are_stored_once_and_acknowledged(harness: Harness) -> None:
    await harness.publish(*(order(f"o{i}", i) for i in range(50)))
    harness.start()
    await eventually(lambda: _count(harness.repo, 50))
    await harness.finish()
    assert harness.consumer.stats.inserted == 50
    assert harness.dead_letters() == []
    assert await harness.unacked() == 0


async def test_redelivered_duplicates_are_counted_not_stored_twice(harness: Harness) -> None:
    await harness.publish(SAMPLE, order("a"), SAMPLE, order("a", 5), SAMPLE)
    harness.start()
    await eventually(lambda: _stat(harness, "received", 5))
    await harness.finish()
    assert harness.consumer.stats.inserted == 2
    assert harness.consumer.stats.duplicates == 3
    assert await harness.repo.count() == 2
    stored = json.loads(await harness.repo.get("a") or b"")
    assert stored == example_document("a")  # the first write wins


CORRUPTIONS: dict[str, tuple[bytes, str, str]] = {
    "broken json": (SAMPLE[:-10], "malformed_json", ""),
    "not utf-8": (SAMPLE.replace(b"Mascaras", b"Masc\xffras"), "not_utf8", ""),
    "wrong type": (
        SAMPLE.replace(b'"zip": "2639809"', b'"zip": 2639809'),
        "invalid_order",
        "delivery.zip",
    ),
    "missing field": (SAMPLE.replace(b'"locale": "en",', b""), "invalid_order", "locale"),
    "inconsistent totals": (
        SAMPLE.replace(b'"amount": 1817', b'"amount": 1818'),
        "invalid_order",
        "payment.amount",
    ),
    "not an object": (b"[1,2,3]", "not_an_object", ""),
}


async def test_invalid_messages_are_dead_lettered_and_the_stream_keeps_flowing(
    harness: Harness,
) -> None:
    payloads = []
    for index, (payload, _, _) in enumerate(CORRUPTIONS.values()):
        payloads += [payload, order(f"ok{index}", index)]
    await harness.publish(*payloads)
    harness.start()
    await eventually(lambda: _stat(harness, "received", len(payloads)))
    await harness.finish()
    assert await harness.repo.count() == len(CORRUPTIONS)
    letters = harness.dead_letters()
    assert len(letters) == len(CORRUPTIONS)
    for letter, (payload, reason, field) in zip(letters, CORRUPTIONS.values(), strict=True):
        assert letter["reason"] == reason
        assert letter["received_at"] == "2025-01-02T03:04:05+00:00"
        assert set(letter["source"]) == {"topic", "partition", "offset"}
        if field:
            assert field in {e["field"] for e in letter["errors"]}
        assert letter["errors"]
        assert set(letter) == {
            "reason",
            "errors",
            "source",
            "received_at",
            "key",
            "payload",
            "payload_encoding",
        }
        if letter["payload_encoding"] == "utf-8":
            assert letter["payload"].encode() == payload
        else:
            assert letter["payload_encoding"] == "base64"
            assert reason == "not_utf8"
            assert base64.b64decode(letter["payload"]) == payload
    assert await harness.unacked() == 0


async def test_a_database_outage_retries_without_dead_lettering_or_acking(
    harness: Harness,
) -> None:
    harness.repo.available = False
    await harness.publish(*(order(f"o{i}", i) for i in range(20)), b"{broken")
    harness.start()
    await eventually(lambda: _stat_at_least(harness, "retries", 5))
    assert harness.consumer.stats.batches == 0
    assert harness.dead_letters() == []
    harness.repo.available = True
    await eventually(lambda: _count(harness.repo, 20))
    await eventually(lambda: _stat(harness, "received", 21))
    await harness.finish()
    assert len(harness.dead_letters()) == 1
    assert harness.consumer.stats.duplicates == 0
    assert await harness.unacked() == 0


async def test_stopping_during_an_outage_leaves_the_batch_for_redelivery(
    harness: Harness,
) -> None:
    harness.repo.available = False
    await harness.publish(*(order(f"o{i}", i) for i in range(5)))
    harness.start()
    await eventually(lambda: _stat_at_least(harness, "retries", 2))
    await harness.finish()
    assert harness.dead_letters() == []
    harness.repo.available = True
    assert await harness.unacked() == 5
    harness.stop = asyncio.Event()
    harness.consumer = harness.new_consumer()
    harness.start()
    await eventually(lambda: _count(harness.repo, 5))
    await harness.finish()
    assert await harness.unacked() == 0


async def test_a_broker_outage_while_dead_lettering_is_retried(harness: Harness) -> None:
    await harness.publish(b"not json", order("x"))
    publish = harness.bus.publish
    failures = 3

    async def flaky(topic: str, messages: Any) -> None:
        nonlocal failures
        if topic == DLQ and failures:
            failures -= 1
            from core.errors import BrokerUnavailable

            raise BrokerUnavailable("down")
        await publish(topic, messages)

    harness.bus.publish = flaky  # type: ignore[method-assign]
    harness.start()
    await eventually(lambda: _stat(harness, "received", 2))
    await harness.finish()
    assert harness.consumer.stats.retries >= 3
    assert len(harness.dead_letters()) == 1
    # "x" was stored by the first attempt; the successful retry finds it there.
    assert (harness.consumer.stats.inserted, harness.consumer.stats.duplicates) == (0, 1)
    assert await harness.repo.count() == 1
    assert await harness.unacked() == 0


def test_backoff_grows_exponentially_within_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=2.0, rng=random.Random(7))
    for attempt in range(12):
        ceiling = min(2.0, 0.1 * 2**attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range


async def _count(repo: MemoryOrderRepository, n: int) -> bool:
    return await repo.count() == n


async def _stat(harness: Harness, name: str, n: int) -> bool:
    return bool(getattr(harness.consumer.stats, name) == n)


async def _stat_at_least(harness: Harness, name: str, n: int) -> bool:
    return bool(getattr(harness.consumer.stats, name) >= n)


async def test_a_stop_during_a_batch_write_finishes_and_acks_that_batch(
    harness: Harness,
) -> None:
    # Graceful shutdown (SIGTERM/SIGINT set ``stop``): the batch in hand is committed and
    # acknowledged, not abandoned for redelivery.
    entered, release = asyncio.Event(), asyncio.Event()
    add_many = harness.repo.add_many

    async def slow_add_many(orders: Any) -> Any:
        entered.set()
        await release.wait()
        return await add_many(orders)

    harness.repo.add_many = slow_add_many  # type: ignore[method-assign]
    await harness.publish(*(order(f"o{i}", i) for i in range(5)))
    harness.start()
    await asyncio.wait_for(entered.wait(), 5)
    harness.stop.set()
    release.set()
    await harness.finish()
    assert await harness.repo.count() == 5
    assert harness.consumer.stats.batches == 1
    assert await harness.unacked() == 0


class _Recorder:
    """An event source whose subscriptions log acks, and a repository that logs stores and
    holds the first store until a later batch's store has finished (so it only completes if
    stores overlap)."""

    def __init__(self, bus: MemoryEventBus, repo: MemoryOrderRepository) -> None:
        self.bus, self.repo = bus, repo
        self.log: list[tuple[str, tuple[str, ...]]] = []
        self.later_store_done = asyncio.Event()

    async def subscribe(self, topic: str, group: str) -> Any:
        inner = await self.bus.subscribe(topic, group)
        recorder = self

        class Sub:
            async def fetch(self, max_messages: int, timeout: float) -> Any:  # noqa: ASYNC109
                return await inner.fetch(max_messages, timeout)

            async def ack(self, deliveries: Any) -> None:
                uids = tuple(json.loads(d.data)["order_uid"] for d in deliveries)
                recorder.log.append(("ack", uids))
                await inner.ack(deliveries)

            async def close(self) -> None:
                await inner.close()

        return Sub()

    async def add_many(self, orders: Any) -> Any:
        uids = tuple(o.order_uid for o in orders)
        first = not self.log
        self.log.append(("start", uids))
        if first:
            await asyncio.wait_for(self.later_store_done.wait(), 5)
        result = await self.repo.add_many(orders)
        self.log.append(("store", uids))
        if not first:
            self.later_store_done.set()
        return result

    async def get(self, order_uid: str) -> bytes | None:
        return await self.repo.get(order_uid)

    async def newest(self, limit: int) -> Any:
        return await self.repo.newest(limit)

    async def count(self) -> int:
        return await self.repo.count()


async def test_batches_are_stored_concurrently_and_acked_in_order_after_their_commit() -> None:
    bus, repo = MemoryEventBus(dedupe_by_key=False), MemoryOrderRepository()
    recorder = _Recorder(bus, repo)
    consumer = consumer_of(recorder, recorder, bus, 5)
    await bus.publish(TOPIC, [OutgoingMessage(data=order(f"o{i:02d}", i)) for i in range(23)])
    async with running(consumer, stop_within=5):
        await eventually(lambda: _count(repo, 23))
        await eventually(lambda: _received(consumer, 23))
    log = recorder.log
    batches = [uids for kind, uids in log if kind == "start"]
    assert [uid for batch in batches for uid in batch] == [f"o{i:02d}" for i in range(23)]
    # the second batch was stored while the first was still being stored
    assert log.index(("store", batches[1])) < log.index(("store", batches[0]))
    # acknowledgements: every batch, in batch order, each after its own commit
    assert [uids for kind, uids in log if kind == "ack"] == batches
    for uids in batches:
        assert log.index(("store", uids)) < log.index(("ack", uids))
    probe = await bus.subscribe(TOPIC, GROUP)
    assert await probe.fetch(100, 0) == []
    await probe.close()


async def _received(consumer: OrderConsumer, n: int) -> bool:
    return consumer.stats.received == n


async def test_a_batch_stored_while_the_previous_one_retries_waits_for_it_to_be_acked() -> None:
    bus, repo = MemoryEventBus(dedupe_by_key=False), MemoryOrderRepository()
    log: list[tuple[str, tuple[str, ...]]] = []
    failures = 3

    class FlakyFirst(_Recorder):
        async def add_many(self, orders: Any) -> Any:
            nonlocal failures
            uids = tuple(o.order_uid for o in orders)
            if uids[0] == "o00" and failures:
                failures -= 1
                log.append(("failed", uids))
                await asyncio.sleep(0)  # let the next batch's store run meanwhile
                from core.errors import StorageError

                raise StorageError("down")
            result = await self.repo.add_many(orders)
            log.append(("store", uids))
            return result

    recorder = FlakyFirst(bus, repo)
    recorder.log = log
    backoff = Backoff(initial=0.01, maximum=0.02, rng=random.Random(3))
    consumer = consumer_of(recorder, recorder, bus, 5, backoff)
    await bus.publish(TOPIC, [OutgoingMessage(data=order(f"o{i:02d}", i)) for i in range(10)])
    async with running(consumer, stop_within=5):
        await eventually(lambda: _received(consumer, 10))
    first, second = tuple(f"o{i:02d}" for i in range(5)), tuple(f"o{i:02d}" for i in range(5, 10))
    assert log.index(("store", second)) < log.index(("store", first))  # stored meanwhile
    assert [uids for kind, uids in log if kind == "ack"] == [first, second]
    assert log.index(("store", first)) < log.index(("ack", first))
    assert consumer.stats.retries >= 3
