"""The event bus on Apache Kafka (confluent-kafka).

- Topics are created on first use by the admin client (``partitions``, replication 1 unless
  configured), with the topic's ``Retention`` as ``retention.ms`` / ``retention.bytes``
  (``retention.bytes`` is per partition: the topic's bound split over its partitions); an
  existing topic keeps its partitions and gets its retention set in place
  (``incremental_alter_configs``).
- The producer is idempotent (``enable.idempotence``, ``acks=all``): retries inside the client
  never duplicate or reorder. ``key`` is the Kafka message key, so one key stays in one
  partition, in order. Kafka does not drop a key re-published by the caller: consumers stay
  idempotent by key (the log store dedups by event id, the order store by order uid).
- ``publish`` returns after every message's delivery report came back without error; a message
  that cannot be delivered within ``delivery_timeout`` fails the call (``BrokerUnavailable``).
  A message refused for what it is (``MSG_SIZE_TOO_LARGE``, an invalid record, no
  authorisation: ``REFUSED``) fails it with ``MessageRefused`` naming those messages, when
  every other one was delivered; retrying them unchanged could never succeed.
- Consumers: ``enable.auto.commit=false``. ``ack`` records acknowledged offsets and commits, per
  partition, the offset after the longest acknowledged prefix of what was fetched (never past an
  unacknowledged message). On a partition revoke the acknowledged prefix is committed
  synchronously before the partition goes; unacknowledged messages go to the next owner.
- Group membership: partitions revoked in a rebalance get their acknowledged prefix committed
  first (a failed commit is logged: those messages go to the next owner again); partitions
  *lost* (``on_lost``: the session expired while the broker was away, the member was fenced)
  are dropped without a commit, since this member no longer owns them. A commit refused for
  lost membership (``UNKNOWN_MEMBER_ID``, ``ILLEGAL_GENERATION``, ...) drops those partitions
  the same way and the ack returns: their deliveries are the new owner's. librdkafka rejoins
  on the next ``consume``, so the consumer goes on with no operator action.
- confluent-kafka calls block: every consumer call runs on the subscription's own daemon thread
  (rebalance callbacks fire on it too), producer flushes and admin calls on daemon threads of
  their own. The event loop never waits on librdkafka, and a call stuck on an unreachable
  broker never holds up the process's exit. If the consumer thread dies, every call fails with
  ``KafkaThreadDied`` (not a ``BrokerUnavailable``: the worker exits and is restarted); a fatal
  client error (``KafkaError.fatal()``) fails the same way.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from core import tracing
from core.errors import BrokerUnavailable, MessageRefused
from core.ports.bus import Delivery, OutgoingMessage, Retention

log = logging.getLogger(__name__)


#: Error codes that refuse a message for what it is: publishing it again cannot succeed.
REFUSED = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
    }
)


#: Commit errors that mean this member no longer owns the partitions it tried to commit.
MEMBERSHIP_LOST = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
    }
)

#: How long closing a consumer may take before it is abandoned to its daemon thread.
CLOSE_WAIT = 2.0

T = TypeVar("T")


class KafkaThreadDied(RuntimeError):
    """The consumer's thread is gone, or the client hit a fatal error: this subscription can
    never work again, and the worker holding it must exit (its supervisor restarts it)."""


class _Thread:
    """One daemon thread running calls in submission order (librdkafka wants a consumer used
    from one thread). Callers wait with a liveness check, so a dead thread fails them instead
    of leaving them waiting forever."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, fn, args = item
            try:
                result = fn(*args)
            except Exception as exc:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            except:  # noqa: E722 - librdkafka can raise a bare KafkaError (no exception class)
                loop.call_soon_threadsafe(_settle, future, None, _as_exception(sys.exc_info()[1]))
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._thread.is_alive():
            raise KafkaThreadDied(f"thread {self._thread.name} is dead")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, fn, args))
        while True:
            done, _ = await asyncio.wait({future}, timeout=1.0)
            if done:
                return future.result()
            if not self._thread.is_alive():
                raise KafkaThreadDied(f"thread {self._thread.name} died during a call")

    def stop(self) -> None:
        self._calls.put(None)


def _as_exception(raised: object) -> BaseException:
    if isinstance(raised, BaseException):
        return raised
    if isinstance(raised, KafkaError):
        return KafkaException(raised)
    return RuntimeError(f"non-exception raised: {raised!r}")


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """``fn()`` on a fresh daemon thread (``asyncio.to_thread``'s threads are joined at exit:
    one blocked on a dead broker would hold the process)."""
    worker = _Thread("kafka-call")
    try:
        return await worker.run(fn)
    finally:
        worker.stop()


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
        retention: dict[str, Retention] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._retention = dict(retention or {})
        self._partitions = partitions
        self._replication = replication_factor
        self._delivery_timeout = delivery_timeout
        self._client_id = client_id
        self._extra = dict(extra_config or {})
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._topics: set[str] = set()
        self._subscriptions: list[KafkaSubscription] = []
        self._closing = False
        self._lag_probes: dict[str, tuple[_Thread, Consumer]] = {}

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

        configs = self._topic_config(topic)

        def create() -> None:
            futures = admin.create_topics(
                [NewTopic(topic, self._partitions, self._replication, config=configs)],
                operation_timeout=self._delivery_timeout,
                request_timeout=self._delivery_timeout,
            )
            for future in futures.values():
                try:
                    future.result(timeout=self._delivery_timeout + 5)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
                    if configs:
                        alter(admin.list_topics(topic, timeout=self._delivery_timeout))

        def alter(metadata: Any) -> None:
            partitions = max(1, len(metadata.topics[topic].partitions))
            entries = [
                ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
                for name, value in self._topic_config(topic, partitions).items()
            ]
            resource = ConfigResource("topic", topic, incremental_configs=entries)
            for future in admin.incremental_alter_configs([resource]).values():
                future.result(timeout=self._delivery_timeout + 5)

        try:
            await _in_daemon_thread(create)
        except (KafkaException, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot create Kafka topic {topic}: {exc}") from exc
        self._topics.add(topic)

    def _topic_config(self, topic: str, partitions: int | None = None) -> dict[str, str]:
        """``retention.ms`` / ``retention.bytes`` (per partition) of ``topic``'s retention."""
        retention = self._retention.get(topic)
        if retention is None:
            return {}
        per_partition = retention.max_bytes // max(1, partitions or self._partitions)
        return {
            "retention.ms": str(int(retention.max_age * 1000)) if retention.max_age > 0 else "-1",
            "retention.bytes": str(max(per_partition, 1)) if retention.max_bytes > 0 else "-1",
        }

    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._closing = False
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
        with tracing.send_span("kafka", topic, len(messages)) as span:
            await self._publish(producer, topic, messages, deadline, span.headers())

    async def _publish(
        self,
        producer: Producer,
        topic: str,
        messages: Sequence[OutgoingMessage],
        deadline: float,
        context: Mapping[str, str],
    ) -> None:
        """``publish`` once the topic exists; ``context``: the trace headers of the messages
        that carry none of their own."""

        def send() -> tuple[list[str], dict[int, str]]:
            errors: list[str] = []
            refused: dict[int, str] = {}
            reported = 0

            def reporter(index: int) -> Any:
                def report(err: KafkaError | None, _msg: Any) -> None:
                    nonlocal reported
                    reported += 1
                    if err is None:
                        return
                    if err.code() in REFUSED:
                        refused[index] = str(err)
                    else:
                        errors.append(str(err))

                return report

            for index, message in enumerate(messages):
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=message.data,
                            key=message.key.encode() if message.key is not None else None,
                            headers=_headers_of(message, context),
                            on_delivery=reporter(index),
                        )
                        break
                    except BufferError:
                        if self._closing:
                            raise KafkaException(KafkaError(KafkaError._DESTROY)) from None
                        producer.poll(0.1)
                    except KafkaException as exc:  # refused before it left (too large, say)
                        if exc.args[0].code() not in REFUSED:
                            raise
                        refused[index] = str(exc.args[0])
                        reported += 1
                        break
            self._flush(producer, deadline)
            if reported < len(messages):
                errors.append(f"{len(messages) - reported} message(s) without delivery report")
            return errors, refused

        try:
            errors, refused = await _in_daemon_thread(send)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka publish failed: {exc}") from exc
        if errors:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {errors[0]}")
        if refused:
            first = min(refused)
            raise MessageRefused(
                f"Kafka refused {len(refused)} message(s) on {topic}: {refused[first]}",
                sorted(refused),
            )

    def _flush(self, producer: Producer, deadline: float) -> None:
        """``producer.flush`` in short slices, so a close (at stop) ends the wait promptly
        instead of holding the thread (and the process's exit) for the whole deadline."""
        end = time.monotonic() + deadline
        while producer.flush(min(0.5, max(end - time.monotonic(), 0))) and not self._closing:
            if time.monotonic() >= end:
                return

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

    async def lag(self, topic: str, group: str) -> dict[str, int]:
        """Per partition, high watermark minus ``group``'s committed offset (the low watermark
        where it committed none). Read through a consumer of that group id that never
        subscribes or commits: it reads the group's offsets without joining it."""
        probe = self._lag_probes.get(group)
        if probe is None:
            thread = _Thread(f"kafka-lag-{group}")
            config = {**self._base(), "group.id": group, "enable.auto.commit": False}
            try:
                consumer = await thread.run(Consumer, config)
            except KafkaException as exc:
                thread.stop()
                raise BrokerUnavailable(f"cannot create a Kafka lag probe: {exc}") from exc
            probe = self._lag_probes[group] = (thread, consumer)
        thread, consumer = probe
        timeout = self._delivery_timeout

        def measure() -> dict[str, int]:
            metadata = consumer.list_topics(topic, timeout=timeout)
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                return {}
            parts = [TopicPartition(topic, p) for p in sorted(found.partitions)]
            lag: dict[str, int] = {}
            for tp in consumer.committed(parts, timeout=timeout):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=timeout, cached=False
                )
                lag[str(tp.partition)] = max(0, high - (tp.offset if tp.offset >= 0 else low))
            return lag

        try:
            return await thread.run(measure)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot read the lag of {group}: {exc}") from exc

    async def ping(self) -> None:
        if self._admin is None:
            self._admin = AdminClient(self._base())
        admin = self._admin
        try:
            await _in_daemon_thread(lambda: admin.list_topics(timeout=3))
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka unreachable: {exc}") from exc

    async def close(self) -> None:
        self._closing = True  # publishes still waiting for reports give up (unacknowledged)
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        probes, self._lag_probes = self._lag_probes, {}
        for thread, consumer in probes.values():
            try:
                await asyncio.wait_for(thread.run(consumer.close), CLOSE_WAIT)
            except (KafkaException, KafkaThreadDied, TimeoutError) as exc:
                log.info("closing a Kafka lag probe: %r", exc)
            finally:
                thread.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await _in_daemon_thread(lambda: producer.flush(min(self._delivery_timeout, 1.0)))


_ids = iter(range(1, 1 << 62))


class KafkaSubscription:
    """One consumer in a group. Offsets fetched and acknowledged are tracked per partition;
    ``generation`` changes when a partition is revoked or lost, so acks of deliveries fetched
    before that are ignored (those messages go to the partition's next owner)."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic
        self._id = next(_ids)
        self._thread = _Thread(f"kafka-{topic}")
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        # partition -> offsets fetched and not yet committed, in order; acked subset
        self._fetched: dict[int, list[int]] = {}
        self._acked: dict[int, set[int]] = {}
        self._generation: dict[int, int] = {}
        self._closed = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._thread.run(fn, *args)

    async def start(self) -> None:
        def create() -> None:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe(
                [self._topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )

        try:
            await self._run(create)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot create Kafka consumer: {exc}") from exc

    # -- called on the consumer thread -------------------------------------------------------
    # Rebalance callbacks never raise: an exception would come out of ``consume()`` in the
    # middle of librdkafka's rebalance.

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._fetched[tp.partition] = []
                self._acked[tp.partition] = set()
        log.info("kafka partitions assigned: %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        owned = [tp.partition for tp in partitions]
        try:
            self._commit_acked(consumer, owned)
        except KafkaException as exc:
            log.warning(
                "commit on revoke of %s failed (redelivered to the next owner): %s",
                owned,
                exc.args[0],
            )
        self._drop(owned)
        log.info("kafka partitions revoked: %s", sorted(owned))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = [tp.partition for tp in partitions]
        self._drop(lost)
        log.warning(
            "kafka partitions lost (membership expired), uncommitted work dropped: %s", sorted(lost)
        )

    def _drop(self, partitions: list[int]) -> None:
        """Forget ``partitions``: no commit for them ever again from deliveries fetched so far."""
        with self._lock:
            for partition in partitions:
                self._fetched.pop(partition, None)
                self._acked.pop(partition, None)
                self._generation[partition] = self._generation.get(partition, 0) + 1

    def _commit_acked(self, consumer: Consumer, partitions: list[int] | None = None) -> None:
        """Commit the offset after each partition's acknowledged prefix. Runs on the consumer
        thread only; tracking is dropped after the commit succeeded, so a failed commit is
        retried by the next ack (or the messages are redelivered). A commit refused because
        this member lost the partitions drops them (``MEMBERSHIP_LOST``)."""
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
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() not in MEMBERSHIP_LOST:
                raise
            self._drop(list(prefixes))
            log.warning(
                "commit refused, membership lost (%s): partitions %s dropped",
                exc.args[0].name(),
                sorted(prefixes),
            )
            return
        with self._lock:
            for partition, done in prefixes.items():
                fetched = self._fetched.get(partition, [])
                self._acked.get(partition, set()).difference_update(fetched[:done])
                del fetched[:done]

    def _consume(self, max_messages: int, timeout: float) -> list[Delivery]:
        consumer = self._consumer
        assert consumer is not None
        try:
            messages = consumer.consume(num_messages=max_messages, timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.fatal():
                raise KafkaThreadDied(f"fatal Kafka consumer error: {err}") from exc
            raise
        except:  # noqa: E722 - a failure inside a rebalance can come out as a bare KafkaError
            raised: object = sys.exc_info()[1]
            if isinstance(raised, KafkaError) and not raised.fatal():
                raise KafkaException(raised) from None
            raise KafkaThreadDied(f"Kafka consume failed: {raised!r}") from None
        deliveries: list[Delivery] = []
        with self._lock:
            for m in messages:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if err.fatal():
                        raise KafkaThreadDied(f"fatal Kafka consumer error: {err}")
                    if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise KafkaException(err)
                    log.warning("kafka consumer error: %s", err)
                    continue
                partition, offset, topic = (
                    int(m.partition() or 0),
                    int(m.offset() or 0),
                    self._topic,
                )
                if partition not in self._fetched:
                    continue  # fetched before a revoke or loss we have processed since
                self._fetched[partition].append(offset)
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
        """Commit what was acknowledged and leave the group, waiting ``CLOSE_WAIT`` seconds at
        most: with the broker away the consumer is abandoned to its daemon thread (the group
        expires it; unacknowledged messages go to the next owner)."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._run(self._close), CLOSE_WAIT)
        except (KafkaException, KafkaThreadDied, TimeoutError) as exc:
            log.info("closing a Kafka consumer: %r (uncommitted messages are redelivered)", exc)
        finally:
            self._thread.stop()


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


def _headers_of(
    message: OutgoingMessage, context: Mapping[str, str]
) -> list[tuple[str, str | bytes | None]]:
    headers: list[tuple[str, str | bytes | None]] = [
        (k, v.encode()) for k, v in message.headers.items()
    ]
    if context and tracing.TRACEPARENT not in message.headers:
        headers += [(k, v.encode()) for k, v in context.items()]
    return headers


async def probe(bootstrap_servers: str, within: float) -> None:
    """Return if a broker of ``bootstrap_servers`` answers ``KafkaEventBus.ping`` (lists the
    topics), on clients of its own, else raise ``BrokerUnavailable``."""
    bus = KafkaEventBus(
        bootstrap_servers,
        client_id="hexmarket-probe",
        extra_config={"socket.timeout.ms": max(1, int(within * 1000))},
    )
    try:
        await bus.ping()
    finally:
        await bus.close()
