"""The in-memory catalog store's relay view of its outbox (the catalog store contract runs on
it too: ``tests/contracts.py``)."""

from __future__ import annotations

from adapters.memory.catalog import MemoryCatalogStore
from core.contracts.catalog import event


async def test_relay_view_of_the_outbox() -> None:
    store = MemoryCatalogStore(topic="t.events")
    async with store.unit_of_work() as uow:
        good = await uow.goods.add(project_id=1, name="a", description="")
        await uow.outbox.add([event(good), event(good, "update")])
        assert not store.outbox_signal.is_set()
        await uow.commit()
    assert store.outbox_signal.is_set()
    first, second = store.outbox_records()
    assert (first.topic, first.key) == ("t.events", str(first.event_id))
    store.mark_outbox_sent([first.id])
    assert store.outbox_records(pending_only=True) == [second]
