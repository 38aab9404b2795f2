"""The in-memory event bus beyond the contract (which runs on it in both de-duplication modes:
``tests/contracts.py``)."""

from __future__ import annotations

import pytest

from adapters.memory.bus import MemoryEventBus
from core.errors import BrokerUnavailable
from core.ports.bus import OutgoingMessage


async def test_an_unavailable_bus_refuses_every_call() -> None:
    bus = MemoryEventBus()
    sub = await bus.subscribe("t", "g")
    bus.available = False
    with pytest.raises(BrokerUnavailable):
        await bus.publish("t", [OutgoingMessage(data=b"x")])
    with pytest.raises(BrokerUnavailable):
        await sub.fetch(1, 0.01)
    with pytest.raises(BrokerUnavailable):
        await bus.ping()
    bus.available = True
    await bus.publish("t", [OutgoingMessage(data=b"x")])
    assert [d.data for d in await sub.fetch(5, 0.01)] == [b"x"]


async def test_two_subscriptions_of_one_group_share_the_work() -> None:
    bus = MemoryEventBus()
    await bus.publish("t", [OutgoingMessage(data=str(i).encode()) for i in range(10)])
    a, b = await bus.subscribe("t", "g"), await bus.subscribe("t", "g")
    got_a = await a.fetch(5, 0.01)
    got_b = await b.fetch(10, 0.01)
    assert len(got_a) == 5
    assert len(got_b) == 5
    assert not {d.data for d in got_a} & {d.data for d in got_b}


async def test_a_waiting_fetch_wakes_on_publish() -> None:
    import asyncio

    bus = MemoryEventBus()
    sub = await bus.subscribe("t", "g")
    waiting = asyncio.create_task(sub.fetch(10, 5.0))
    await bus.publish("t", [OutgoingMessage(data=b"wake")])
    got = await asyncio.wait_for(waiting, 1.0)
    assert [d.data for d in got] == [b"wake"]
