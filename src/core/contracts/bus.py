"""The event bus contract: what every ``EventBus`` adapter must do, as a reusable test suite.

Use it from a test module by providing a ``bus_harness`` fixture (parametrized over the
adapters) and subclassing ``EventBusContract``::

    @pytest.fixture(params=["memory", "nats"])
    async def bus_harness(request, unique): ...

    class TestEventBus(EventBusContract):
        pass

Negative checks ("this was not delivered again") never wait for silence: the test publishes a
sentinel with the same key after the fact and drains until the sentinel arrives; messages with
one key are ordered, so anything redelivered would have come before it.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from core.ports.bus import Delivery, EventBus, OutgoingMessage, Subscription


@attrs.define(kw_only=True)
class BusHarness:
    """How the suite reaches one adapter.

    ``connect`` opens a fresh client (a new connection: what a restarted process would get);
    ``topic_name`` / ``group_name`` return fresh names valid for this adapter (already
    provisioned where the adapter needs it). ``dedupes_by_key``: a re-published key is stored
    once. ``patience``: seconds to wait for messages that must arrive (consumer group joins
    can be slow)."""

    connect: Callable[[], Awaitable[EventBus]]
    topic_name: Callable[[], str]
    group_name: Callable[[], str]
    dedupes_by_key: bool
    patience: float = 20.0
    opened: list[EventBus] = attrs.field(factory=list)

    async def bus(self) -> EventBus:
        bus = await self.connect()
        self.opened.append(bus)
        return bus

    async def fresh(self) -> tuple[EventBus, str, str]:
        """A new client, a fresh topic and a fresh group: where a test starts."""
        return await self.bus(), self.topic_name(), self.group_name()

    async def aclose(self) -> None:
        for bus in reversed(self.opened):
            await bus.close()
        self.opened.clear()


def default_names(prefix: str) -> tuple[Callable[[], str], Callable[[], str]]:
    """Fresh ``topic`` / ``group`` name factories under ``prefix``."""
    counter = itertools.count(1)

    def topic() -> str:
        return f"{prefix}.t{next(counter)}"

    def group() -> str:
        return f"{prefix}-g{next(counter)}"

    return topic, group


async def drain(
    subscription: Subscription,
    *,
    count: int | None = None,
    until: Callable[[list[Delivery]], bool] | None = None,
    patience: float,
    batch: int = 100,
) -> list[Delivery]:
    """Fetch until ``count`` deliveries (or ``until(received)``) or ``patience`` runs out."""
    received: list[Delivery] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience

    def done() -> bool:
        if until is not None:
            return until(received)
        return count is not None and len(received) >= count

    while not done() and loop.time() < deadline:
        received.extend(await subscription.fetch(batch, min(1.0, patience)))
    return received


def msg(data: bytes, key: str | None = None, **headers: str) -> OutgoingMessage:
    return OutgoingMessage(data=data, key=key or str(uuid.uuid4()), headers=headers)


def _payloads(deliveries: list[Delivery]) -> list[bytes]:
    return [d.data for d in deliveries]


def _has(data: bytes) -> Callable[[list[Delivery]], bool]:
    return lambda received: any(d.data == data for d in received)


class EventBusContract:
    """The shared suite. Test methods take the ``bus_harness`` fixture."""

    @pytest.fixture
    async def harness(self, bus_harness: BusHarness) -> Any:
        yield bus_harness
        await bus_harness.aclose()

    async def test_published_messages_are_consumed_in_order(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        sent = [f"m{i}".encode() for i in range(25)]
        await bus.publish(topic, [msg(d, key=f"k-{i}") for i, d in enumerate(sent)])
        # one key would be one partition; distinct keys may spread, so compare as a set here
        sub = await bus.subscribe(topic, group)
        got = await drain(sub, count=len(sent), patience=harness.patience)
        assert sorted(_payloads(got)) == sorted(sent)
        assert len(got) == len(sent)

    async def test_order_is_kept_per_key(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        keys = ["alpha", "beta", "gamma"]
        sent = [
            self._same_key(harness, keys[i % 3], f"{keys[i % 3]}:{i}".encode()) for i in range(30)
        ]
        await bus.publish(topic, sent[:15])
        await bus.publish(topic, sent[15:])
        sub = await bus.subscribe(topic, group)
        got = await drain(sub, count=len(sent), patience=harness.patience)
        assert len(got) == len(sent)
        for key in keys:
            mine = [d.data for d in got if d.data.startswith(f"{key}:".encode())]
            assert mine == [m.data for m in sent if m.data.startswith(f"{key}:".encode())]

    async def test_fetch_on_an_empty_topic_returns_nothing(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        await bus.publish(topic, [])
        sub = await bus.subscribe(topic, group)
        assert await sub.fetch(10, 0.5) == []

    async def test_payload_bytes_key_and_headers_round_trip(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        raw = b"\xff\xfe not utf-8 \x00 {"
        await bus.publish(topic, [OutgoingMessage(data=raw, key="k1", headers={"x-r": "v"})])
        sub = await bus.subscribe(topic, group)
        (got,) = await drain(sub, count=1, patience=harness.patience)
        assert got.data == raw
        assert got.key == "k1"
        assert got.headers.get("x-r") == "v"
        assert got.source

    async def test_unacked_messages_are_redelivered_after_restart(
        self, harness: BusHarness
    ) -> None:
        bus, topic, group = await harness.fresh()
        sent = [f"r{i}".encode() for i in range(6)]
        await bus.publish(topic, [msg(d, key=f"same-{i}") for i, d in enumerate(sent)])
        sub = await bus.subscribe(topic, group)
        first = await drain(sub, count=len(sent), patience=harness.patience)
        assert len(first) == len(sent)
        acked = [d for d in first if d.data in sent[:3]]
        await sub.ack(acked)
        await sub.close()

        restarted = await harness.bus()
        sub2 = await restarted.subscribe(topic, group)
        again = await drain(
            sub2,
            until=lambda got: set(sent[3:]) <= set(_payloads(got)),
            patience=harness.patience,
        )
        assert set(sent[3:]) <= set(_payloads(again))
        await sub2.ack(again)

    async def test_acked_prefix_is_not_redelivered(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        key = "one-key"
        sent = [f"a{i}".encode() for i in range(10)]
        # one key => one partition/ordering domain, distinct dedup ids where the broker dedups
        await bus.publish(topic, [self._same_key(harness, key, d) for d in sent])
        sub = await bus.subscribe(topic, group)
        got: list[Delivery] = []
        while len(got) < len(sent):
            batch = await drain(sub, count=1, patience=harness.patience, batch=4)
            assert batch, "messages did not arrive"
            got.extend(batch)
        await sub.ack(got)  # one batch ack for everything
        await sub.close()

        restarted = await harness.bus()
        sentinel = b"sentinel"
        await restarted.publish(topic, [self._same_key(harness, key, sentinel)])
        sub2 = await restarted.subscribe(topic, group)
        after = await drain(sub2, until=_has(sentinel), patience=harness.patience)
        assert _payloads(after) == [sentinel]

    async def test_duplicate_keys(self, harness: BusHarness) -> None:
        bus, topic, group = await harness.fresh()
        dup = OutgoingMessage(data=b"event-1", key="evt-1")
        await bus.publish(topic, [dup])
        await bus.publish(topic, [dup])  # a relay retrying after a lost ack
        await bus.publish(topic, [OutgoingMessage(data=b"event-2", key="evt-1-after")])
        sub = await bus.subscribe(topic, group)
        got = await drain(sub, until=_has(b"event-2"), patience=harness.patience)
        ones = _payloads(got).count(b"event-1")
        if harness.dedupes_by_key:
            assert ones == 1
        else:
            assert ones >= 1

    async def test_groups_are_independent(self, harness: BusHarness) -> None:
        bus = await harness.bus()
        topic = harness.topic_name()
        sent = [f"g{i}".encode() for i in range(5)]
        await bus.publish(topic, [msg(d) for d in sent])
        for group in (harness.group_name(), harness.group_name()):
            sub = await bus.subscribe(topic, group)
            got = await drain(sub, count=len(sent), patience=harness.patience)
            assert sorted(_payloads(got)) == sorted(sent)
            await sub.ack(got)
            await sub.close()

    async def test_a_subscription_continues_where_the_group_left_off(
        self, harness: BusHarness
    ) -> None:
        bus, topic, group = await harness.fresh()
        key = "k"
        await bus.publish(topic, [self._same_key(harness, key, b"before")])
        sub = await bus.subscribe(topic, group)
        got = await drain(sub, count=1, patience=harness.patience)
        await sub.ack(got)
        await sub.close()
        await bus.publish(topic, [self._same_key(harness, key, b"after")])
        sub2 = await bus.subscribe(topic, group)
        got2 = await drain(sub2, until=_has(b"after"), patience=harness.patience)
        assert _payloads(got2) == [b"after"]

    async def test_lag_counts_what_the_group_has_not_acknowledged(
        self, harness: BusHarness
    ) -> None:
        bus, topic, group = await harness.fresh()
        sub = await bus.subscribe(topic, group)
        await bus.publish(topic, [msg(b"%d" % i, key=f"lag{i}") for i in range(6)])
        assert sum((await bus.lag(topic, group)).values()) == 6
        got = await drain(sub, count=6, patience=harness.patience)
        assert sum((await bus.lag(topic, group)).values()) == 6  # fetched is not acknowledged
        await sub.ack(got)
        lag = await bus.lag(topic, group)
        assert sum(lag.values()) == 0
        assert all(value >= 0 for value in lag.values())
        await sub.close()

    @staticmethod
    def _same_key(harness: BusHarness, key: str, data: bytes) -> OutgoingMessage:
        """Messages in one ordering domain. Dedup-by-key brokers order everything in a stream,
        so they get distinct ids; the others get the shared key (their partitioning key)."""
        if harness.dedupes_by_key:
            return OutgoingMessage(data=data, key=f"{key}-{uuid.uuid4()}")
        return OutgoingMessage(data=data, key=key)
