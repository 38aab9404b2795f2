"""Kafka group membership on a real broker: acks of deliveries fetched before a rebalance never
commit (the partition may be someone else's now), and a consumer whose thread died fails
loudly, so its process exits non-zero instead of idling."""

from __future__ import annotations

import asyncio

import pytest

from adapters.kafka_bus import KafkaEventBus, KafkaSubscription, KafkaThreadDied
from adapters.memory.orders import MemoryOrderRepository
from core.contracts.bus import drain
from core.orders.ingest import IngestOrders, OrderConsumer
from core.ports.bus import Delivery, OutgoingMessage
from entrypoints.runtime import run_tasks
from tests.support import eventually
from tests.unit.test_orders_ingest import FixedClock

pytestmark = pytest.mark.kafka


def _partitions(deliveries: list[Delivery]) -> dict[int, list[Delivery]]:
    out: dict[int, list[Delivery]] = {}
    for d in deliveries:
        out.setdefault(int(d.source["partition"]), []).append(d)
    return out


async def test_acks_of_deliveries_fetched_before_a_rebalance_never_commit(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group = f"{unique}.revoke", f"{unique}-revoke"
    bus = KafkaEventBus(kafka_bootstrap, partitions=2)
    total = 20
    try:
        await bus.publish(
            topic, [OutgoingMessage(data=f"m{i}".encode(), key=f"k{i}") for i in range(total)]
        )
        first = await bus.subscribe(topic, group)
        fetched = await drain(first, count=total, patience=30)
        by_partition = _partitions(fetched)
        assert len(by_partition) == 2
        # acknowledged while the partitions are ours: committed
        await first.ack([ds[0] for ds in by_partition.values()])

        second = await bus.subscribe(topic, group)
        assert isinstance(second, KafkaSubscription)

        async def rebalanced() -> bool:  # both poll: the group rebalances, second gets a partition
            if second._fetched:
                return True
            await asyncio.gather(first.fetch(10, 0.2), second.fetch(1, 0.2))
            return False

        await eventually(rebalanced, within=60, what="a rebalance", interval=0)
        # stale: fetched before the revoke. These acks must not commit anything.
        await first.ack([d for ds in by_partition.values() for d in ds[1:]])
        await first.close()
        await second.close()

        third = await bus.subscribe(topic, group)
        again = await drain(third, count=total - 2, patience=30)
        assert sorted(d.data for d in again) == sorted(
            d.data for ds in by_partition.values() for d in ds[1:]
        )
        await third.close()
    finally:
        await bus.close()


async def test_a_dead_consumer_thread_fails_the_worker_instead_of_idling(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group = f"{unique}.dead", f"{unique}-dead"
    bus = KafkaEventBus(kafka_bootstrap, partitions=1)
    repo = MemoryOrderRepository()
    consumer = OrderConsumer(
        source=bus,
        topic=topic,
        group=group,
        ingest=IngestOrders(
            repository=repo, publisher=bus, dlq_topic=f"{topic}.dlq", clock=FixedClock()
        ),
        batch_size=10,
        batch_timeout=0.05,
    )

    async def consume(stop: asyncio.Event) -> None:
        await consumer.run(stop)

    async def kill_its_thread(stop: asyncio.Event) -> None:
        await eventually(lambda: bus._subscriptions, within=60, what="a subscription")
        subscription = bus._subscriptions[0]
        subscription._thread.stop()  # the thread ends, as one killed by a stray exception
        with pytest.raises(KafkaThreadDied):
            await asyncio.wait_for(subscription.fetch(1, 0.1), 10)
        await stop.wait()

    try:
        code = await asyncio.wait_for(
            run_tasks({"consume": consume, "killer": kill_its_thread}, asyncio.Event()), 60
        )
    finally:
        await bus.close()
    assert code == 1
