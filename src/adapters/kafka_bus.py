"""The event bus on Apache Kafka (confluent-kafka).

- Topics are created on first use by the admin client (``partitions``, replication 1 unless
  configured); an existing topic is left as it is.
- The producer is idempotent (``enable.idempotence``, ``acks=all``): retries inside the client
  never duplicate or reorder. ``key`` is the Kafka message key, so one key stays in one
  partition, in order. Kafka does not drop a key re-published by the caller: consumers stay
  idempotent by key (the log store dedups by event id, the order store by order uid).
- ``publish`` returns after every message's delivery report came back without error; a message
  that cannot be delivered within ``delivery_timeout`` fails the call (``BrokerUnavailable``).
- Consumers: ``enable.auto.commit=false``. ``ack`` records acknowledged offsets and commits, per
  partition, the offset after the longest acknowledged prefix of what was fetched (never past an
  unacknowledged message). On a partition revoke the acknowledged prefix is committed
  synchronously before the partition goes; unacknowledged messages go to the next owner.
- confluent-kafka calls block: every consumer call runs on the subscription's own single thread
  (rebalance callbacks fire on it too), producer flushes run in worker threads. The event loop
  never waits on librdkafka.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from core.errors import BrokerUnavailable
from core.ports.bus import Delivery, OutgoingMessage

log = logging.getLogger(__name__)


class _Token(NamedTuple):  # one per consumed message: a tuple is built faster than attrs
    subscription: int
    topic: str
    partition: int
    offset: int
    generation: int


class KafkaEventBus:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int = 6,
        replication_factor: int = 1,
        delivery_timeout: float = 10.0,
        client_id: str = "hexmarket",
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._partitions = partitions
        self._replication = replication_factor
        self._delivery_timeout = delivery_timeout
        self._client_id = client_id
        self._extra = dict(extra_config or {})
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._topics: set[str] = set()
        self._subscriptions: list[KafkaSubscription] = []

    def _base(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._bootstrap,
            "client.id": self._client_id,
            "socket.connection.setup.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 2000,
            # librdkafka's own log lines go through Python logging, not raw stderr
            "logger": logging.getLogger("librdkafka"),
            **self._extra,
        }

    async def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        if self._admin is None:
            self._admin = AdminClient(self._base())
        admin = self._admin

        def create() -> None:
            futures = admin.create_topics(
                [NewTopic(topic, self._partitions, self._replication)],
                operation_timeout=self._delivery_timeout,
                request_timeout=self._delivery_timeout,
            )
            for future in futures.values():
                try:
                    future.result(timeout=self._delivery_timeout + 5)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise

        try:
            await asyncio.to_thread(create)
        except (KafkaException, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot create Kafka topic {topic}: {exc}") from exc
        self._topics.add(topic)

    def _get_producer(self) -> Producer:
        if self._producer is None:
            timeout_ms = int(self._delivery_timeout * 1000)
            self._producer = Producer(
                {
                    **self._base(),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "delivery.timeout.ms": timeout_ms,
                    "request.timeout.ms": min(timeout_ms, 5000),
                }
            )
        return self._producer

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        await self._ensure_topic(topic)
        producer = self._get_producer()
        deadline = self._delivery_timeout + 5.0

        def send() -> list[str]:
            errors: list[str] = []
            reported = 0

            def report(err: KafkaError | None, _msg: Any) -> None:
                nonlocal reported
                reported += 1
                if err is not None:
                    errors.append(str(err))

            for message in messages:
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=message.data,
                            key=message.key.encode() if message.key is not None else None,
                            headers=[(k, v.encode()) for k, v in message.headers.items()],
                            on_delivery=report,
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
            producer.flush(deadline)
            if reported < len(messages):
                errors.append(f"{len(messages) - reported} message(s) without delivery report")
            return errors

        try:
            errors = await asyncio.to_thread(send)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka publish failed: {exc}") from exc
        if errors:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {errors[0]}")

    async def subscribe(self, topic: str, group: str) -> KafkaSubscription:
        await self._ensure_topic(topic)
        subscription = KafkaSubscription(
            {
                **self._base(),
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
            },
            topic,
        )
        await subscription.start()
        self._subscriptions.append(subscription)
        return subscription

    async def ping(self) -> None:
        if self._admin is None:
            self._admin = AdminClient(self._base())
        admin = self._admin
        try:
            await asyncio.to_thread(admin.list_topics, timeout=3)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka unreachable: {exc}") from exc

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        producer, self._producer = self._producer, None
        if producer is not None:
            await asyncio.to_thread(producer.flush, self._delivery_timeout)


_ids = iter(range(1, 1 << 62))


class KafkaSubscription:
    """One consumer in a group. Offsets fetched and acknowledged are tracked per partition;
    ``generation`` changes when a partition is revoked, so acks of deliveries fetched before a
    revoke are ignored (those messages go to the partition's next owner)."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic
        self._id = next(_ids)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kafka-{topic}")
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        # partition -> offsets fetched and not yet committed, in order; acked subset
        self._fetched: dict[int, list[int]] = {}
        self._acked: dict[int, set[int]] = {}
        self._generation: dict[int, int] = {}
        self._closed = False

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def start(self) -> None:
        def create() -> None:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe(
                [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke
            )

        try:
            await self._run(create)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot create Kafka consumer: {exc}") from exc

    # -- called on the consumer thread -------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._fetched[tp.partition] = []
                self._acked[tp.partition] = set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit_acked(consumer, [tp.partition for tp in partitions])
        with self._lock:
            for tp in partitions:
                self._fetched.pop(tp.partition, None)
                self._acked.pop(tp.partition, None)
                self._generation[tp.partition] = self._generation.get(tp.partition, 0) + 1

    def _commit_acked(self, consumer: Consumer, partitions: list[int] | None = None) -> None:
        """Commit the offset after each partition's acknowledged prefix. Runs on the consumer
        thread only; tracking is dropped after the commit succeeded, so a failed commit is
        retried by the next ack (or the messages are redelivered)."""
        offsets: list[TopicPartition] = []
        prefixes: dict[int, int] = {}
        with self._lock:
            for partition in list(self._fetched) if partitions is None else partitions:
                fetched = self._fetched.get(partition, [])
                acked = self._acked.get(partition, set())
                done = 0
                while done < len(fetched) and fetched[done] in acked:
                    done += 1
                if done:
                    offsets.append(TopicPartition(self._topic, partition, fetched[done - 1] + 1))
                    prefixes[partition] = done
        if not offsets:
            return
        consumer.commit(offsets=offsets, asynchronous=False)
        with self._lock:
            for partition, done in prefixes.items():
                fetched = self._fetched.get(partition, [])
                self._acked.get(partition, set()).difference_update(fetched[:done])
                del fetched[:done]

    def _consume(self, max_messages: int, timeout: float) -> list[Delivery]:
        consumer = self._consumer
        assert consumer is not None
        messages = consumer.consume(num_messages=max_messages, timeout=timeout)
        deliveries: list[Delivery] = []
        with self._lock:
            for m in messages:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if err.fatal() or err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise KafkaException(err)
                    log.warning("kafka consumer error: %s", err)
                    continue
                partition, offset, topic = (
                    int(m.partition() or 0),
                    int(m.offset() or 0),
                    self._topic,
                )
                self._fetched.setdefault(partition, []).append(offset)
                deliveries.append(
                    Delivery(
                        data=_bytes(m.value()),
                        key=_text(m.key()),
                        headers={k: _text(v) or "" for k, v in _headers(m.headers())},
                        source={"topic": topic, "partition": partition, "offset": offset},
                        token=_Token(
                            self._id, topic, partition, offset, self._generation.get(partition, 0)
                        ),
                    )
                )
        return deliveries

    def _ack(self, tokens: list[_Token]) -> None:
        with self._lock:
            for t in tokens:
                if self._generation.get(t.partition, 0) != t.generation:
                    continue  # partition was revoked since: its next owner gets it again
                if t.partition in self._acked:
                    self._acked[t.partition].add(t.offset)
        assert self._consumer is not None
        self._commit_acked(self._consumer)

    def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                self._commit_acked(consumer)
            finally:
                consumer.close()  # leaves the group; on_revoke runs here

    # -- the port ------------------------------------------------------------------------------

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        if self._closed:
            raise BrokerUnavailable("subscription is closed")
        try:
            result: list[Delivery] = await self._run(
                self._consume, max(1, max_messages), max(timeout, 0.0)
            )
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka fetch failed: {exc}") from exc
        return result

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        tokens = [d.token for d in deliveries]
        mine = [t for t in tokens if isinstance(t, _Token) and t.subscription == self._id]
        if len(mine) != len(tokens):
            raise ValueError("deliveries from another subscription")
        if not mine or self._closed:
            return
        try:
            await self._run(self._ack, mine)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka offset commit failed: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._run(self._close)
        except KafkaException as exc:
            log.info("closing a Kafka consumer: %s (uncommitted messages are redelivered)", exc)
        finally:
            self._thread.shutdown(wait=False)


def _bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def _text(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.decode(errors="replace")


def _headers(raw: Any) -> list[tuple[str, str | bytes | None]]:
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), v) for k, v in items]
