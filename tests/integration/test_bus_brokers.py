"""What each broker adapter does beyond the shared contract (real NATS and Kafka)."""

from __future__ import annotations

import nats
import pytest

from adapters.kafka_bus import KafkaEventBus
from adapters.nats_bus import NatsEventBus, stream_for
from core.contracts.bus import drain
from core.ports.bus import OutgoingMessage


async def test_nats_puts_each_subject_in_its_own_stream_with_a_duplicate_window(
    nats_url: str, unique: str
) -> None:
    orders, dlq = f"{unique}.orders", f"{unique}.orders.dlq"
    bus = NatsEventBus(nats_url, streams={orders: f"{unique.upper()}_ORDERS"}, duplicate_window=90)
    try:
        await bus.publish(orders, [OutgoingMessage(data=b"o", key="1")])
        await bus.publish(dlq, [OutgoingMessage(data=b"\xffraw", key="1")])
        assert stream_for(dlq, {}) == f"{unique.upper()}_ORDERS_DLQ"
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            main = await js.stream_info(f"{unique.upper()}_ORDERS")
            dead = await js.stream_info(f"{unique.upper()}_ORDERS_DLQ")
        finally:
            await nc.close()
        assert main.config.subjects == [orders]
        assert main.config.duplicate_window == 90
        assert dead.config.subjects == [dlq]
        assert (main.state.messages, dead.state.messages) == (1, 1)
        # a second client provisions idempotently and sees the same streams
        again = NatsEventBus(nats_url, streams={orders: f"{unique.upper()}_ORDERS"})
        await again.start()
        await again.publish(orders, [OutgoingMessage(data=b"o", key="1")])  # duplicate id
        await again.close()
    finally:
        await bus.close()


@pytest.mark.kafka
async def test_kafka_commits_only_the_contiguous_acknowledged_prefix(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group = f"{unique}.gaps", f"{unique}-gaps"
    bus = KafkaEventBus(kafka_bootstrap, partitions=1)
    try:
        await bus.publish(
            topic, [OutgoingMessage(data=f"m{i}".encode(), key="k") for i in range(5)]
        )
        sub = await bus.subscribe(topic, group)
        got = await drain(sub, count=5, patience=30)
        assert [d.data for d in got] == [f"m{i}".encode() for i in range(5)]
        await sub.ack([got[0], got[1], got[3], got[4]])  # m2 is not acknowledged
        await sub.close()

        sub2 = await bus.subscribe(topic, group)
        again = await drain(sub2, count=3, patience=30)
        # the commit stopped before m2: m2 comes back, and so do m3, m4 behind it
        assert [d.data for d in again] == [b"m2", b"m3", b"m4"]
        await sub2.ack(again)
        await sub2.close()
    finally:
        await bus.close()
