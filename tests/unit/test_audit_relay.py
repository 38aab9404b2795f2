"""The outbox relay on in-memory adapters: nothing lost, nothing published twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.outbox import MemoryOutboxRelay
from core.audit.relay import OutboxRelay
from core.catalog.events import GoodEvent
from core.contracts.logstore import event
from core.errors import BrokerUnavailable
from core.ports.bus import OutgoingMessage
from core.retry import Backoff
from tests.support import eventually, running

TOPIC = "goods.events"


async def write_events(store: MemoryCatalogStore, count: int) -> list[GoodEvent]:
    events = [event(good_id=i, seconds=i) for i in range(count)]
    async with store.unit_of_work() as uow:
        await uow.outbox.add(events)
        await uow.commit()
    return events


def fast_backoff() -> Backoff:
    return Backoff(initial=0.005, maximum=0.02)


async def test_relay_once_publishes_in_order_and_marks_sent() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    events = await write_events(store, 7)
    relay = OutboxRelay(MemoryOutboxRelay(store), bus, batch_size=5)
    assert await relay.relay_once() == 5
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0
    assert bus.messages(TOPIC) == [e.to_json() for e in events]
    assert store.outbox_records(pending_only=True) == []


async def test_a_broker_outage_keeps_events_unsent_until_it_ends() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    relay = OutboxRelay(MemoryOutboxRelay(store), bus, batch_size=3, backoff=fast_backoff())
    bus.available = False
    events = await write_events(store, 8)
    async with running(relay, stop_within=2):
        await eventually(lambda: relay.stats.failures >= 3)
        assert len(store.outbox_records(pending_only=True)) == 8
        bus.available = True
        await eventually(lambda: not store.outbox_records(pending_only=True))
    assert bus.messages(TOPIC) == [e.to_json() for e in events]


async def test_the_relay_wakes_on_new_events() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    relay = OutboxRelay(MemoryOutboxRelay(store), bus, idle_wait=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await eventually(lambda: relay.stats.rounds == 0 and not task.done())
    events = await write_events(store, 2)
    # idle_wait is 30 s: only the outbox signal can make this prompt
    await eventually(lambda: len(bus.messages(TOPIC)) == 2, within=2.0)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert bus.messages(TOPIC) == [e.to_json() for e in events]


class LostAck:
    """Stores the messages, then fails as if the broker's ack was lost on the way back."""

    def __init__(self, bus: MemoryEventBus) -> None:
        self.bus = bus
        self.fail_next = True

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        await self.bus.publish(topic, messages)
        if self.fail_next:
            self.fail_next = False
            raise BrokerUnavailable("ack lost")

    async def close(self) -> None:
        return None


async def test_a_lost_ack_republishes_and_the_broker_drops_the_duplicate() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=True)
    events = await write_events(store, 4)
    relay = OutboxRelay(MemoryOutboxRelay(store), LostAck(bus))
    try:
        await relay.relay_once()
    except BrokerUnavailable:
        pass
    else:
        raise AssertionError("the first publish should have failed")
    assert len(store.outbox_records(pending_only=True)) == 4
    assert await relay.relay_once() == 4
    assert bus.messages(TOPIC) == [e.to_json() for e in events]


async def test_concurrent_relays_publish_each_event_once() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    events = await write_events(store, 50)
    shared = MemoryOutboxRelay(store)
    relays = [OutboxRelay(shared, bus, batch_size=4) for _ in range(3)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    await eventually(lambda: not store.outbox_records(pending_only=True))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    published = bus.messages(TOPIC)
    assert sorted(published) == sorted(e.to_json() for e in events)
    assert sum(r.stats.published for r in relays) == 50


async def test_marks_survive_a_unit_of_work_that_was_open_during_the_relay_round() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    await write_events(store, 2)
    relay = OutboxRelay(MemoryOutboxRelay(store), bus)
    async with store.unit_of_work() as uow:
        round_ = asyncio.create_task(relay.relay_once())
        await eventually(lambda: len(bus.messages(TOPIC)) == 2)
        await uow.outbox.add([event(good_id=99)])
        await uow.commit()
    assert await asyncio.wait_for(round_, 2) == 2
    pending = store.outbox_records(pending_only=True)
    assert [r.payload for r in pending] == [store.outbox_records()[-1].payload]


class Gated:
    """Holds every publish until ``gate`` opens; records how many were in flight at once."""

    def __init__(self, bus: MemoryEventBus, *, fail_first: bool = False) -> None:
        self.bus = bus
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_first = fail_first

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if self.fail_first:
                self.fail_first = False
                raise BrokerUnavailable("no ack")
            await self.bus.publish(topic, messages)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        return None


async def test_lanes_overlap_rounds_and_publish_each_event_once() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    events = await write_events(store, 25)
    publisher = Gated(bus)
    relay = OutboxRelay(MemoryOutboxRelay(store), publisher, batch_size=4, lanes=3)
    async with running(relay, stop_within=2):
        # three claims are held at once, disjoint, while none is acknowledged yet
        await eventually(lambda: publisher.in_flight == 3)
        assert len(store.outbox_records(pending_only=True)) == 25
        publisher.gate.set()
        await eventually(lambda: not store.outbox_records(pending_only=True))
    assert sorted(bus.messages(TOPIC)) == sorted(e.to_json() for e in events)
    assert relay.stats.published == 25


async def test_a_failed_lane_leaves_only_its_own_batch_unsent_for_the_retry() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    events = await write_events(store, 8)
    publisher = Gated(bus, fail_first=True)
    relay = OutboxRelay(
        MemoryOutboxRelay(store), publisher, batch_size=4, lanes=2, backoff=fast_backoff()
    )
    async with running(relay, stop_within=2):
        await eventually(lambda: publisher.in_flight == 2)
        publisher.gate.set()
        await eventually(lambda: not store.outbox_records(pending_only=True))
    assert relay.stats.failures == 1
    assert sorted(bus.messages(TOPIC)) == sorted(e.to_json() for e in events)


async def test_stopping_finishes_the_rounds_in_flight_before_returning() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    await write_events(store, 6)
    publisher = Gated(bus)
    relay = OutboxRelay(MemoryOutboxRelay(store), publisher, batch_size=3, lanes=2)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await eventually(lambda: publisher.in_flight == 2)
    stop.set()
    await asyncio.sleep(0)  # the stop request is seen while both rounds wait for acks
    assert not task.done()
    publisher.gate.set()
    await asyncio.wait_for(task, 2)
    assert len(bus.messages(TOPIC)) == 6
    assert store.outbox_records(pending_only=True) == []


async def test_one_lane_keeps_outbox_order_across_batches() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus(dedupe_by_key=False)
    events = await write_events(store, 23)
    relay = OutboxRelay(MemoryOutboxRelay(store), bus, batch_size=4, lanes=1)
    async with running(relay, stop_within=2):
        await eventually(lambda: not store.outbox_records(pending_only=True))
    assert bus.messages(TOPIC) == [e.to_json() for e in events]
