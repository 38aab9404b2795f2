"""The event bus port: publish with broker acknowledgement, consume in batches with explicit ack.

Topic names are logical (``orders``, ``orders.dlq``, ``goods.events``). A Kafka adapter uses
them as topics; a NATS JetStream adapter uses them as subjects, each bound to a stream
(``ORDERS``, ``GOODS_EVENTS``) by its configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs


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
    token: object = attrs.field(eq=False, repr=False)


class EventPublisher(Protocol):
    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Publish ``messages`` to ``topic`` and return only after the broker acknowledged every
        one of them (durably stored). Raises ``BrokerUnavailable`` if any was not acknowledged;
        the caller then publishes them again, and the broker drops duplicates by ``key`` where it
        can (JetStream's de-duplication window)."""
        ...

    async def close(self) -> None:
        """Flush and release the connection. Idempotent."""
        ...


class Subscription(Protocol):
    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Wait up to ``timeout`` seconds for messages and return at most ``max_messages``
        (possibly none). Messages not acknowledged are delivered again: after a restart of the
        consumer at the latest. Raises ``BrokerUnavailable`` when the broker is unreachable."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge ``deliveries`` (Kafka: commit offsets past them; JetStream: ack each).
        Only call after their effects are durable. Raises ``BrokerUnavailable`` on failure."""
        ...

    async def close(self) -> None:
        """Stop consuming; unacknowledged messages will be redelivered to the next consumer."""
        ...


class EventSource(Protocol):
    async def subscribe(self, topic: str, group: str) -> Subscription:
        """A durable subscription of consumer group ``group`` to ``topic``, resuming after the
        last acknowledged message of that group (or from the beginning for a new group)."""
        ...
