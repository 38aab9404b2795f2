"""``KafkaDeadLetterArchive``: the dead-letter topic on Kafka, read without disturbing its
consumers.

Each read uses a consumer of its own: a group id of its own (``hexmarket-dlq-reader-<uuid>``),
partitions **assigned** (never subscribed: it joins no group), auto-commit off and no commit
ever, so no consumer group's offsets move. A scan reads every partition from its low watermark
(or the first offset stored at ``since``) to its high watermark when the scan started; ``get``
reads one offset. confluent-kafka's calls block, so they run on a daemon thread
(``kafka_bus._Thread``), never on the event loop.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from adapters.kafka_bus import _Thread
from core.errors import BrokerUnavailable
from core.ports.dead_letters import KeptDeadLetter

_BATCH = 500


class KafkaDeadLetterArchive:
    name = "kafka"

    def __init__(self, bootstrap_servers: str, *, topic: str, timeout: float = 10.0) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._timeout = timeout

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"hexmarket-dlq-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "socket.connection.setup.timeout.ms": 5000,
                "allow.auto.create.topics": False,
            }
        )

    def _ranges(self, consumer: Consumer, since: datetime | None) -> dict[int, tuple[int, int]]:
        """partition -> (first offset to read, high watermark) of every non-empty range."""
        metadata = consumer.list_topics(self._topic, timeout=self._timeout)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return {}
        ranges: dict[int, tuple[int, int]] = {}
        for partition in sorted(topic.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self._topic, partition), timeout=self._timeout, cached=False
            )
            ranges[partition] = (low, high)
        if since is not None and ranges:
            ms = int(since.timestamp() * 1000)
            found = consumer.offsets_for_times(
                [TopicPartition(self._topic, p, ms) for p in ranges], timeout=self._timeout
            )
            for tp in found:
                low, high = ranges[tp.partition]
                ranges[tp.partition] = (high if tp.offset < 0 else max(low, tp.offset), high)
        return {p: (start, high) for p, (start, high) in ranges.items() if start < high}

    async def scan(self, since: datetime | None = None) -> AsyncIterator[KeptDeadLetter]:
        thread = _Thread(f"kafka-dlq-{self._topic}")
        consumer: Consumer | None = None
        try:
            try:
                consumer = await thread.run(self._consumer)
                ranges = await thread.run(self._ranges, consumer, since)
                if not ranges:
                    return
                await thread.run(
                    consumer.assign,
                    [TopicPartition(self._topic, p, start) for p, (start, _) in ranges.items()],
                )
            except KafkaException as exc:
                raise BrokerUnavailable(f"cannot read Kafka topic {self._topic}: {exc}") from exc
            remaining = {p: high for p, (_, high) in ranges.items()}
            while remaining:
                try:
                    batch = await thread.run(_consume, consumer, _BATCH, 1.0)
                except KafkaException as exc:
                    raise BrokerUnavailable(f"reading Kafka topic {self._topic}: {exc}") from exc
                for partition, offset, value, stored_at in batch:
                    high = remaining.get(partition)
                    if high is None or offset >= high:
                        continue
                    yield KeptDeadLetter(
                        ref=f"{partition}/{offset}", data=value, stored_at=stored_at
                    )
                    if offset + 1 >= high:
                        del remaining[partition]
        finally:
            if consumer is not None:
                await thread.run(consumer.close)
            thread.stop()

    async def get(self, ref: str) -> KeptDeadLetter | None:
        partition_text, _, offset_text = ref.partition("/")
        if not (partition_text.isdigit() and offset_text.isdigit()):
            return None
        partition, offset = int(partition_text), int(offset_text)
        thread = _Thread(f"kafka-dlq-{self._topic}")
        consumer: Consumer | None = None
        try:
            consumer = await thread.run(self._consumer)
            ranges = await thread.run(self._ranges, consumer, None)
            start, high = ranges.get(partition, (0, 0))
            if not start <= offset < high:
                return None
            await thread.run(consumer.assign, [TopicPartition(self._topic, partition, offset)])
            for _ in range(max(1, int(self._timeout))):
                for got_partition, got_offset, value, stored_at in await thread.run(
                    _consume, consumer, 1, 1.0
                ):
                    if (got_partition, got_offset) == (partition, offset):
                        return KeptDeadLetter(ref=ref, data=value, stored_at=stored_at)
            return None
        except KafkaException as exc:
            raise BrokerUnavailable(f"reading Kafka topic {self._topic}: {exc}") from exc
        finally:
            if consumer is not None:
                await thread.run(consumer.close)
            thread.stop()

    async def close(self) -> None:
        """Nothing to release: every read closes its own consumer."""


def _consume(
    consumer: Consumer, count: int, timeout: float
) -> list[tuple[int, int, bytes, datetime | None]]:
    out: list[tuple[int, int, bytes, datetime | None]] = []
    for m in consumer.consume(num_messages=count, timeout=timeout):
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(err)
        kind, ms = m.timestamp()
        stored_at = datetime.fromtimestamp(ms / 1000, UTC) if kind and ms > 0 else None
        value: Any = m.value()
        data = value if isinstance(value, bytes) else (value or "").encode()
        out.append((int(m.partition() or 0), int(m.offset() or 0), data, stored_at))
    return out
