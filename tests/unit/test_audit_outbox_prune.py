"""Sent outbox records are deleted after their retention, while the relay is idle; unsent
ones never are."""

from __future__ import annotations

from adapters.memory.bus import MemoryEventBus
from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.outbox import MemoryOutboxRelay
from core.audit.relay import OutboxRelay
from tests.support import eventually, running
from tests.unit.test_audit_relay import TOPIC, write_events


async def test_sent_records_past_their_retention_are_pruned_and_unsent_ones_kept() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    relay = OutboxRelay(
        MemoryOutboxRelay(store), bus, batch_size=5, idle_wait=0.01, keep_sent=0.0, prune_every=0
    )
    events = await write_events(store, 12)
    async with running(relay, stop_within=2):
        await eventually(lambda: not store.outbox_records())
        assert relay.stats.pruned == 12
        bus.available = False  # the next ones stay unsent: never pruned
        await write_events(store, 3)
        await eventually(lambda: relay.stats.failures >= 2)
        assert len(store.outbox_records(pending_only=True)) == 3
    assert bus.messages(TOPIC) == [e.to_json() for e in events]


async def test_without_a_retention_sent_records_stay() -> None:
    store, bus = MemoryCatalogStore(), MemoryEventBus()
    relay = OutboxRelay(MemoryOutboxRelay(store), bus, idle_wait=0.01)
    await write_events(store, 4)
    async with running(relay, stop_within=2):
        await eventually(lambda: not store.outbox_records(pending_only=True))
    assert len(store.outbox_records()) == 4
    assert relay.stats.pruned == 0
