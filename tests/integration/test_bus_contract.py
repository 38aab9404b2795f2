"""The event bus contract on every adapter: in-memory, NATS JetStream, Kafka (real servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.memory.bus import MemoryEventBus
from adapters.nats_bus import NatsEventBus
from core.contracts.bus import BusHarness, EventBusContract, default_names
from core.ports.bus import EventBus


@pytest.fixture(
    params=["memory", "nats", pytest.param("kafka", marks=pytest.mark.kafka)],
)
async def bus_harness(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[BusHarness]:
    topic, group = default_names(f"bus{unique}")
    kind = request.param
    if kind == "memory":
        shared = MemoryEventBus()

        async def connect() -> EventBus:
            return shared

        yield BusHarness(
            connect=connect, topic_name=topic, group_name=group, dedupes_by_key=True, patience=2
        )
    elif kind == "nats":
        url = request.getfixturevalue("nats_url")

        async def connect() -> EventBus:
            return NatsEventBus(url, ack_wait=5.0)

        yield BusHarness(
            connect=connect, topic_name=topic, group_name=group, dedupes_by_key=True, patience=10
        )
    else:
        from adapters.kafka_bus import KafkaEventBus

        bootstrap = request.getfixturevalue("kafka_bootstrap")

        async def connect() -> EventBus:
            return KafkaEventBus(bootstrap, partitions=3)

        yield BusHarness(
            connect=connect, topic_name=topic, group_name=group, dedupes_by_key=False, patience=30
        )


class TestEventBus(EventBusContract):
    pass
