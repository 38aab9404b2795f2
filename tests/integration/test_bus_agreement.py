"""Hypothesis stateful agreement: the same random publishes, fetches, acks and consumer
restarts on the in-memory bus (the reference model) and on NATS JetStream must deliver the same
messages."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.memory.bus import MemoryEventBus
from adapters.nats_bus import NatsEventBus
from core.ports.bus import Delivery, EventBus, OutgoingMessage, Subscription


def test_nats_agrees_with_the_in_memory_bus(nats_url: str, unique: str) -> None:
    runs = itertools.count(1)

    class Agreement(RuleBasedStateMachine):
        """Both buses see identical operations; each step compares what they delivered."""

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            run = next(runs)
            self.topic, self.group = f"{unique}.agree{run}", f"{unique}-agree{run}"
            self.buses: list[EventBus] = [MemoryEventBus(), NatsEventBus(nats_url, ack_wait=30)]
            self.subs: list[Subscription] = []
            self.payloads = itertools.count()
            self.in_hand: list[list[Delivery]] = [[], []]
            self.acked: list[set[bytes]] = [set(), set()]

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        @initialize()
        def subscribe(self) -> None:
            self.subs = [self.run(b.subscribe(self.topic, self.group)) for b in self.buses]

        @rule(count=st.integers(1, 5))
        def publish(self, count: int) -> None:
            batch = [
                OutgoingMessage(data=f"m{next(self.payloads)}".encode(), key=None)
                for _ in range(count)
            ]
            for bus in self.buses:
                self.run(bus.publish(self.topic, batch))

        @rule(count=st.integers(1, 6))
        def fetch(self, count: int) -> None:
            got = [self.run(sub.fetch(count, 0.3)) for sub in self.subs]
            assert sorted(d.data for d in got[0]) == sorted(d.data for d in got[1])
            for held, new in zip(self.in_hand, got, strict=True):
                held.extend(new)

        @rule()
        def ack_in_hand(self) -> None:
            for i, sub in enumerate(self.subs):
                self.run(sub.ack(self.in_hand[i]))
                self.acked[i].update(d.data for d in self.in_hand[i])
                self.in_hand[i] = []

        @rule()
        def restart_without_ack(self) -> None:
            for sub in self.subs:
                self.run(sub.close())
            self.in_hand = [[], []]
            self.subscribe()

        @invariant()
        def same_acknowledged(self) -> None:
            assert self.acked[0] == self.acked[1]

        def teardown(self) -> None:
            for sub in self.subs:
                self.run(sub.close())
            for bus in self.buses:
                self.run(bus.close())
            self.loop.close()

    Agreement.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)
    Agreement.TestCase().runTest()
