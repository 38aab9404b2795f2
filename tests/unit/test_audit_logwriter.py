"""The log writer on in-memory adapters: batching by N or T, ack after the write, retry."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from adapters.memory.bus import MemoryEventBus
from adapters.memory.logstore import MemoryLogStore
from core.audit.logwriter import LogWriter
from core.catalog.events import GoodEvent
from core.contracts.logstore import event
from core.ports.audit import NEWEST, LogQuery
from core.ports.bus import Delivery, OutgoingMessage, Subscription
from core.retry import Backoff
from tests.support import eventually, running

TOPIC, GROUP = "goods.events", "logs"


def as_messages(events: list[GoodEvent]) -> list[OutgoingMessage]:
    return [OutgoingMessage(data=e.to_json(), key=str(e.event_id)) for e in events]


def writer(bus: MemoryEventBus, store: MemoryLogStore, **kw: object) -> LogWriter:
    return LogWriter(
        bus,
        store,
        topic=TOPIC,
        group=GROUP,
        backoff=Backoff(initial=0.005, maximum=0.02),
        idle_wait=0.05,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_batch_closes_at_n_events() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    await bus.publish(TOPIC, as_messages([event(good_id=i) for i in range(12)]))
    w = writer(bus, store, batch_size=5, batch_ms=200)
    sub = await bus.subscribe(TOPIC, GROUP)
    sizes = [len(await w.collect(sub)) for _ in range(3)]
    assert sizes == [5, 5, 2]


async def test_a_batch_closes_t_ms_after_its_first_event() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    await bus.publish(TOPIC, as_messages([event(good_id=i) for i in range(3)]))
    w = writer(bus, store, batch_size=1000, batch_ms=100)
    sub = await bus.subscribe(TOPIC, GROUP)
    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = await w.collect(sub)
    elapsed = loop.time() - started
    assert len(batch) == 3
    assert 0.09 <= elapsed < 1.0


async def test_events_are_written_once_per_batch_then_acked() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(10)]
    await bus.publish(TOPIC, as_messages(events))
    w = writer(bus, store, batch_size=10, batch_ms=50)
    async with running(w, stop_within=2):
        await eventually(lambda: w.stats.written == 10)
    assert store.appends == 1
    assert sorted(e.event_id for e in await store.query()) == sorted(e.event_id for e in events)
    # everything was acked: a new subscription of the group gets nothing
    assert await (await bus.subscribe(TOPIC, GROUP)).fetch(10, 0.01) == []


async def four_events_and_a_store_down() -> tuple[MemoryEventBus, MemoryLogStore]:
    """A bus holding four events for a log store that is unavailable."""
    bus, store = MemoryEventBus(), MemoryLogStore()
    store.available = False
    await bus.publish(TOPIC, as_messages([event(good_id=i, seconds=i) for i in range(4)]))
    return bus, store


async def test_a_store_failure_keeps_the_batch_unacked_and_retries_it() -> None:
    bus, store = await four_events_and_a_store_down()
    w = writer(bus, store, batch_size=100, batch_ms=10)
    async with running(w, stop_within=2):
        await eventually(lambda: w.stats.store_failures >= 3)
        assert w.stats.written == 0
        store.available = True
        await eventually(lambda: w.stats.written == 4)
    assert len(await store.query()) == 4


async def test_stopping_during_a_store_outage_leaves_the_batch_for_redelivery() -> None:
    bus, store = await four_events_and_a_store_down()
    w = writer(bus, store, batch_size=100, batch_ms=10)
    async with running(w, stop_within=2):
        await eventually(lambda: w.stats.store_failures >= 1)
    store.available = True
    second = writer(bus, store, batch_size=100, batch_ms=10)
    async with running(second, stop_within=2):
        await eventually(lambda: second.stats.written == 4)
    assert len(await store.query()) == 4


async def test_redelivered_events_are_stored_once_and_poison_is_skipped() -> None:
    bus, store = MemoryEventBus(dedupe_by_key=False), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(3)]
    await bus.publish(TOPIC, as_messages(events))
    await bus.publish(TOPIC, [OutgoingMessage(data=b"\xff not json", key="poison")])
    await bus.publish(TOPIC, as_messages(events))  # Kafka keeps re-published keys
    w = writer(bus, store, batch_size=4, batch_ms=10)
    async with running(w, stop_within=2):
        await eventually(lambda: w.stats.written == 7)
    assert w.stats.rejected == 1
    assert sorted(e.event_id for e in await store.query()) == sorted(e.event_id for e in events)


class Journal:
    """The order of appends and acks, by event key, through wrappers of the real adapters;
    appends wait for ``gate``."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, frozenset[str]]] = []
        self.fetched = 0
        self.gate = asyncio.Event()
        self.appending = 0

    def acked(self) -> set[str]:
        return {k for kind, keys in self.entries if kind == "ack" for k in keys}

    def assert_each_ack_follows_its_write(self) -> None:
        written: set[str] = set()
        for kind, keys in self.entries:
            if kind == "append":
                written |= keys
            else:
                assert keys <= written, "acknowledged before it was written"


class JournalStore:
    def __init__(self, store: MemoryLogStore, journal: Journal) -> None:
        self.store, self.journal = store, journal

    async def append(self, events: Sequence[GoodEvent]) -> None:
        self.journal.appending += 1
        try:
            await self.journal.gate.wait()
            await self.store.append(events)
        finally:
            self.journal.appending -= 1
        self.journal.entries.append(("append", frozenset(str(e.event_id) for e in events)))

    async def query(self, query: LogQuery = NEWEST) -> list[GoodEvent]:
        return await self.store.query(query)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class JournalSubscription:
    def __init__(self, inner: Subscription, journal: Journal) -> None:
        self.inner, self.journal = inner, journal

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        got = await self.inner.fetch(max_messages, timeout)
        self.journal.fetched += len(got)
        return got

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self.inner.ack(deliveries)
        self.journal.entries.append(("ack", frozenset(str(d.key) for d in deliveries)))

    async def close(self) -> None:
        await self.inner.close()


class JournalSource:
    def __init__(self, bus: MemoryEventBus, journal: Journal) -> None:
        self.bus, self.journal = bus, journal

    async def subscribe(self, topic: str, group: str) -> Subscription:
        return JournalSubscription(await self.bus.subscribe(topic, group), self.journal)


def journaled(bus: MemoryEventBus, store: MemoryLogStore, **kw: Any) -> tuple[LogWriter, Journal]:
    journal = Journal()
    w = LogWriter(
        JournalSource(bus, journal),
        JournalStore(store, journal),
        topic=TOPIC,
        group=GROUP,
        backoff=Backoff(initial=0.005, maximum=0.02),
        idle_wait=0.05,
        **kw,
    )
    return w, journal


async def test_the_next_batch_is_fetched_during_a_write_and_each_acked_only_after_its_own() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(15)]
    await bus.publish(TOPIC, as_messages(events))
    w, journal = journaled(bus, store, batch_size=5, batch_ms=10)
    async with running(w, stop_within=2):
        # the first write is held: the second batch is fetched meanwhile, nothing is acked
        await eventually(lambda: journal.appending == 1 and journal.fetched == 10)
        assert journal.acked() == set()
        journal.gate.set()
        await eventually(lambda: w.stats.written == 15)
    journal.assert_each_ack_follows_its_write()
    assert journal.acked() == {str(e.event_id) for e in events}
    assert [kind for kind, _ in journal.entries].count("append") == 3


async def test_a_stop_during_a_write_finishes_the_batches_in_hand_and_loses_none() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(10)]
    await bus.publish(TOPIC, as_messages(events))
    w, journal = journaled(bus, store, batch_size=5, batch_ms=10)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await eventually(lambda: journal.appending == 1 and journal.fetched == 10)
    stop.set()
    journal.gate.set()
    await asyncio.wait_for(task, 2)
    journal.assert_each_ack_follows_its_write()
    assert {str(e.event_id) for e in events[:5]} <= journal.acked()
    # whatever was not acknowledged comes back to the group: none is lost
    again = await bus.subscribe(TOPIC, GROUP)
    redelivered = {str(d.key) for d in await again.fetch(100, 0.05)}
    assert redelivered.isdisjoint(journal.acked())
    assert redelivered | journal.acked() == {str(e.event_id) for e in events}
