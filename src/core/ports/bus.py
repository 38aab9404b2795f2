"""The event bus port: publish with broker acknowledgement, consume in batches with explicit ack.

Topic names are logical (``orders``, ``orders.dlq``, ``goods.events``). A Kafka adapter uses
them as topics; a NATS JetStream adapter uses them as subjects, each bound to a stream
(``ORDERS``, ``ORDERS_DLQ``, ``GOODS_EVENTS``) by its configuration.

Delivery is at least once. What every adapter promises (checked by ``core.contracts.bus``):

- a published message is stored once ``publish`` returns, and survives consumer restarts;
- messages with the same ``key`` are consumed in the order they were published;
- a message that was not acknowledged is delivered again, at the latest to the next
  subscription of the same group after the current one closed (or its process died);
- a message acknowledged together with every message fetched before it is not delivered
  again to that group;
- brokers that de-duplicate by key (JetStream's duplicate window) store a re-published key
  once; others (Kafka) may store it twice, so consumers stay idempotent by key.

Dead letters are ordinary publishes of raw bytes to the dead-letter topic: ``publish`` takes
bytes verbatim and never parses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs


@attrs.frozen(kw_only=True, slots=True)
class Retention:
    """What a broker keeps of one topic: messages older than ``max_age`` seconds, or beyond
    ``max_bytes`` in total (oldest first), are dropped. 0 means no limit."""

    max_age: float = 0.0
    max_bytes: int = 0


@attrs.frozen(kw_only=True)
class OutgoingMessage:
    """A message to publish. ``key`` is both the de-duplication id (JetStream ``Nats-Msg-Id``)
    and the partitioning key (Kafka message key): messages with the same key keep their order."""

    data: bytes
    key: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Delivery:
    """A consumed message. ``source`` says where it came from, for dead-letter envelopes and
    logs: ``{"topic", "partition", "offset"}`` (Kafka) or ``{"stream", "seq"}`` (JetStream).
    ``token`` is the adapter's own handle used to acknowledge it; callers never look inside."""

    data: bytes
    key: str | None
    source: Mapping[str, str | int]
    headers: Mapping[str, str] = attrs.field(factory=dict)
    token: object = attrs.field(default=None, eq=False, repr=False)


class EventPublisher(Protocol):
    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Publish ``messages`` to ``topic`` and return only after the broker acknowledged every
        one of them (durably stored). Messages with the same key are stored in the order given.
        Raises ``BrokerUnavailable`` if any was not acknowledged; the caller then publishes them
        again, and the broker drops duplicates by ``key`` where it can (JetStream's
        de-duplication window). Publishing an empty sequence is a no-op."""
        ...

    async def close(self) -> None:
        """Flush and release the connection. Idempotent."""
        ...


class Subscription(Protocol):
    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for messages and return at most ``max_messages``
        (possibly none); returns as soon as some are available. Messages not acknowledged are
        delivered again: after a restart of the consumer at the latest. Raises
        ``BrokerUnavailable`` when the broker is unreachable."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge ``deliveries`` (Kafka: commit offsets past the contiguous acknowledged
        prefix of each partition; JetStream: ack each and wait for the server's confirmation).
        Only call after their effects are durable. Acknowledging an empty sequence is a no-op.
        Raises ``BrokerUnavailable`` on failure; the deliveries then count as unacknowledged."""
        ...

    async def close(self) -> None:
        """Stop consuming; unacknowledged messages will be redelivered to the next consumer.
        Idempotent."""
        ...


class EventSource(Protocol):
    async def subscribe(self, topic: str, group: str) -> Subscription:
        """A durable subscription of consumer group ``group`` to ``topic``, resuming after the
        last acknowledged message of that group (or from the beginning for a new group).
        Raises ``BrokerUnavailable`` when the broker is unreachable."""
        ...


class ConsumerLag(Protocol):
    async def lag(self, topic: str, group: str) -> Mapping[str, int]:
        """How many messages of ``topic`` consumer group ``group`` has not acknowledged yet,
        by partition (Kafka: high watermark minus the group's committed offset, each partition;
        JetStream: the durable's pending plus unacknowledged messages, under the key ``""``).
        Read-only: nothing is consumed or committed. Raises ``BrokerUnavailable``."""
        ...


class EventBus(EventPublisher, EventSource, ConsumerLag, Protocol):
    """Both sides of one broker connection: what the adapters implement."""

    async def ping(self) -> None:
        """Return if the broker is reachable, else raise ``BrokerUnavailable``."""
        ...
