"""How far a consumer group is behind, asked of the broker (from outside the workers)."""

from __future__ import annotations

import asyncio

import nats
from confluent_kafka import Consumer, TopicPartition


async def lag(broker: str, url: str, stream_or_topic: str, group: str, partitions: int) -> int:
    """NATS: the durable ``group``'s pending plus unacknowledged messages on the stream.
    Kafka: the sum over ``partitions`` of high watermark minus the group's committed offset."""
    if broker == "nats":
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().consumer_info(stream_or_topic, group)
        finally:
            await nc.close()
        return int(info.num_pending) + int(info.num_ack_pending)

    def kafka_lag() -> int:
        consumer = Consumer({"bootstrap.servers": url, "group.id": group})
        try:
            parts = [TopicPartition(stream_or_topic, p) for p in range(partitions)]
            total = 0
            for part in consumer.committed(parts, timeout=10):
                _, high = consumer.get_watermark_offsets(part, timeout=10)
                total += high - max(part.offset, 0)
            return total
        finally:
            consumer.close()

    return await asyncio.to_thread(kafka_lag)
