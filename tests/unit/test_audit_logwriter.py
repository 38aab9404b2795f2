"""The log writer on in-memory adapters: batching by N or T, ack after the write, retry."""

from __future__ import annotations

import asyncio

from adapters.memory.bus import MemoryEventBus
from adapters.memory.logstore import MemoryLogStore
from core.audit.backoff import Backoff
from core.audit.logwriter import LogWriter
from core.catalog.events import GoodEvent
from core.contracts.logstore import event
from core.ports.bus import OutgoingMessage

TOPIC, GROUP = "goods.events", "logs"


def as_messages(events: list[GoodEvent]) -> list[OutgoingMessage]:
    return [OutgoingMessage(data=e.to_json(), key=str(e.event_id)) for e in events]


async def eventually(condition: object, *, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


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
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await eventually(lambda: w.stats.written == 10)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert store.appends == 1
    assert sorted(e.event_id for e in await store.query()) == sorted(e.event_id for e in events)
    # everything was acked: a new subscription of the group gets nothing
    assert await (await bus.subscribe(TOPIC, GROUP)).fetch(10, 0.01) == []


async def test_a_store_failure_keeps_the_batch_unacked_and_retries_it() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(4)]
    store.available = False
    await bus.publish(TOPIC, as_messages(events))
    w = writer(bus, store, batch_size=100, batch_ms=10)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await eventually(lambda: w.stats.store_failures >= 3)
    assert w.stats.written == 0
    store.available = True
    await eventually(lambda: w.stats.written == 4)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert len(await store.query()) == 4


async def test_stopping_during_a_store_outage_leaves_the_batch_for_redelivery() -> None:
    bus, store = MemoryEventBus(), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(4)]
    store.available = False
    await bus.publish(TOPIC, as_messages(events))
    w = writer(bus, store, batch_size=100, batch_ms=10)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await eventually(lambda: w.stats.store_failures >= 1)
    stop.set()
    await asyncio.wait_for(task, 2)
    store.available = True
    second = writer(bus, store, batch_size=100, batch_ms=10)
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(second.run(stop2))
    await eventually(lambda: second.stats.written == 4)
    stop2.set()
    await asyncio.wait_for(task2, 2)
    assert len(await store.query()) == 4


async def test_redelivered_events_are_stored_once_and_poison_is_skipped() -> None:
    bus, store = MemoryEventBus(dedupe_by_key=False), MemoryLogStore()
    events = [event(good_id=i, seconds=i) for i in range(3)]
    await bus.publish(TOPIC, as_messages(events))
    await bus.publish(TOPIC, [OutgoingMessage(data=b"\xff not json", key="poison")])
    await bus.publish(TOPIC, as_messages(events))  # Kafka keeps re-published keys
    w = writer(bus, store, batch_size=4, batch_ms=10)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await eventually(lambda: w.stats.written == 7)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert w.stats.rejected == 1
    assert sorted(e.event_id for e in await store.query()) == sorted(e.event_id for e in events)
