"""Order ingest: validate a batch of broker messages, store the valid ones in one transaction,
dead-letter the invalid ones, and only then acknowledge the batch.

The effect is exactly once: the broker delivers at least once, the repository's write is
idempotent by ``order_uid``, and acknowledgement strictly follows the database commit. Transient
failures (``StorageError``, ``BrokerUnavailable``) are retried with capped exponential backoff
and full jitter, forever (until asked to stop); they never dead-letter or skip a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from core.errors import InfrastructureError
from core.orders.model import Order
from core.orders.parsing import OrderParser, Rejection, parse_order
from core.ports.bus import Delivery, EventPublisher, EventSource, OutgoingMessage, Subscription
from core.ports.clock import Clock
from core.ports.orders import OrderRepository

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen(kw_only=True, slots=True)
class BatchReport:
    received: int
    inserted: int
    duplicates: int
    dead_lettered: int


def dead_letter_envelope(
    delivery: Delivery, rejection: Rejection, received_at: str
) -> dict[str, Any]:
    """The dead-letter document: ``{reason, errors, source, received_at, key, payload,
    payload_encoding}``. ``payload`` is always present and keeps the message verbatim: its text
    when the bytes are UTF-8 (``payload_encoding`` ``"utf-8"``), else the exact bytes in
    standard base64 (``payload_encoding`` ``"base64"``)."""
    try:
        payload, encoding = delivery.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(delivery.data).decode("ascii"), "base64"
    return {
        "reason": rejection.reason,
        "errors": rejection.errors_as_json(),
        "source": dict(delivery.source),
        "received_at": received_at,
        "key": delivery.key,
        "payload": payload,
        "payload_encoding": encoding,
    }


@attrs.frozen(kw_only=True)
class PreparedBatch:
    """A batch after parsing: the messages as delivered, the valid orders, the dead letters."""

    deliveries: Sequence[Delivery]
    orders: Sequence[Order]
    dead: Sequence[OutgoingMessage]


def _source_id(delivery: Delivery) -> str:
    return "/".join(str(delivery.source[k]) for k in sorted(delivery.source))


class IngestOrders:
    """The ingest use case for one batch. ``handle`` returns once the valid orders are
    committed and the dead letters acknowledged by the broker; the caller then acks the batch.
    It raises ``StorageError`` / ``BrokerUnavailable`` with nothing to acknowledge (a retry of
    the same batch is safe: stored orders come back as duplicates, and dead letters are
    re-published under the same de-duplication key).

    ``parse`` turns message bytes into an ``Order`` or a ``Rejection``; the default is the
    reference ``parse_order``, and any replacement must agree with it."""

    def __init__(
        self,
        *,
        repository: OrderRepository,
        publisher: EventPublisher,
        dlq_topic: str,
        clock: Clock,
        parse: OrderParser = parse_order,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._dlq_topic = dlq_topic
        self._clock = clock
        self._parse = parse

    async def handle(self, deliveries: Sequence[Delivery]) -> BatchReport:
        """``store(prepare(deliveries))``."""
        return await self.store(self.prepare(deliveries))

    def prepare(self, deliveries: Sequence[Delivery]) -> PreparedBatch:
        """Parse and validate the batch, and build the dead letters of the invalid messages.
        Pure computation: no I/O, never raises for any message content."""
        orders: list[Order] = []
        dead: list[OutgoingMessage] = []
        received_at = self._clock.now().isoformat()
        parse = self._parse
        for delivery in deliveries:
            parsed = parse(delivery.data)
            if isinstance(parsed, Order):
                orders.append(parsed)
                continue
            envelope = dead_letter_envelope(delivery, parsed, received_at)
            dead.append(
                OutgoingMessage(
                    data=json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
                    key=f"dlq:{_source_id(delivery)}",
                    headers={"reason": parsed.reason},
                )
            )
        return PreparedBatch(deliveries=tuple(deliveries), orders=orders, dead=dead)

    async def store(self, batch: PreparedBatch) -> BatchReport:
        """Commit the valid orders, then publish the dead letters. Safe to repeat."""
        inserted = duplicates = 0
        if batch.orders:
            result = await self._repository.add_many(batch.orders)
            inserted, duplicates = result.inserted, result.duplicates
        if batch.dead:
            await self._publisher.publish(self._dlq_topic, batch.dead)
        return BatchReport(
            received=len(batch.deliveries),
            inserted=inserted,
            duplicates=duplicates,
            dead_lettered=len(batch.dead),
        )


@attrs.frozen(kw_only=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt ``n`` (from 0) waits a uniform
    random time in ``[0, min(maximum, initial * 2**n)]``."""

    initial: float = 0.05
    maximum: float = 5.0
    rng: random.Random = attrs.field(factory=random.Random, eq=False)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(attempt, 30)))
        return self.rng.uniform(0, ceiling)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever is first."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


@attrs.define(kw_only=True)
class ConsumerStats:
    batches: int = 0
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0


async def _ack(subscription: Subscription, deliveries: Sequence[Delivery]) -> bool:
    await subscription.ack(deliveries)
    return True


class OrderConsumer:
    """The consume loop: collect a batch (up to ``batch_size`` messages, or what arrived within
    ``batch_timeout`` seconds of its first one), ``IngestOrders.handle`` it, acknowledge, repeat
    until ``stop`` is set. Up to three batches overlap: one is collected and parsed
    (``IngestOrders.prepare``), one is being stored (its own connection), and the one before
    it finishes its commit and acknowledgement. Acknowledgements still follow each batch's own
    commit and go out in batch order. A collected batch that was never stored (at stop) is
    left unacknowledged. Batches in hand when ``stop`` is set are finished and acknowledged if
    they can be; if a transient failure persists they are left unacknowledged for
    redelivery."""

    def __init__(
        self,
        *,
        source: EventSource,
        topic: str,
        group: str,
        ingest: IngestOrders,
        batch_size: int,
        batch_timeout: float,
        backoff: Backoff | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self._source = source
        self._topic = topic
        self._group = group
        self._ingest = ingest
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout
        self._backoff = backoff or Backoff()
        self._on_batch = on_batch
        self.stats = ConsumerStats()

    async def _retry(
        self, what: str, call: Callable[[], Awaitable[T]], stop: asyncio.Event
    ) -> T | None:
        """``call()`` until it succeeds; ``None`` if ``stop`` was set while failing."""
        attempt = 0
        while True:
            try:
                return await call()
            except InfrastructureError as exc:
                self.stats.retries += 1
                delay = self._backoff.delay(attempt)
                log.warning(
                    "%s failed, retrying in %.2fs (attempt %d): %s", what, delay, attempt + 1, exc
                )
                attempt += 1
                if stop.is_set():
                    return None
                await _pause(stop, delay)
                if stop.is_set():
                    return None

    async def run(self, stop: asyncio.Event) -> ConsumerStats:
        subscription = await self._retry(
            "subscribe", lambda: self._source.subscribe(self._topic, self._group), stop
        )
        if subscription is None:
            return self.stats
        try:
            await self._loop(subscription, stop)
        finally:
            try:
                await subscription.close()
            except InfrastructureError as exc:
                log.warning("closing the subscription failed: %s", exc)
        return self.stats

    async def _fill(self, subscription: Subscription, batch: list[Delivery]) -> list[Delivery]:
        """Keep fetching until the batch is full or ``batch_timeout`` has passed since its
        first message; a fetch failure here just ends the batch early."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._batch_timeout
        while len(batch) < self._batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                more = await subscription.fetch(self._batch_size - len(batch), remaining)
            except InfrastructureError:
                break
            batch.extend(more)
        return batch

    async def _collect(self, subscription: Subscription, stop: asyncio.Event) -> PreparedBatch:
        """The next batch, parsed (empty if nothing arrived within ``batch_timeout``, or on
        stop)."""
        batch = await self._retry(
            "fetch",
            lambda: subscription.fetch(self._batch_size, self._batch_timeout),
            stop,
        )
        if batch:
            batch = await self._fill(subscription, batch)
        return self._ingest.prepare(batch or [])

    async def _loop(self, subscription: Subscription, stop: asyncio.Event) -> None:
        # Three batches overlap: the next one is fetched and parsed, the current one is being
        # stored, and the previous one finishes its commit and acknowledgement. Each batch is
        # acknowledged only after its own commit, and after the previous batch's handling
        # ended, so acknowledgements go out in batch order.
        ahead: asyncio.Task[PreparedBatch] | None = None
        previous: asyncio.Task[bool] | None = None
        try:
            while not stop.is_set():
                if ahead is None:
                    batch = await self._collect(subscription, stop)
                else:
                    batch, ahead = await ahead, None
                if not batch.deliveries:
                    continue
                if not stop.is_set():
                    ahead = asyncio.create_task(self._collect(subscription, stop))
                current = asyncio.create_task(self._handle(subscription, batch, stop, previous))
                stored = True if previous is None else await previous
                previous = current
                if not stored:
                    return
        finally:
            if ahead is not None:  # fetched, never stored: the subscription's close naks it
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, InfrastructureError):
                    await ahead
            if previous is not None:  # a batch in hand is finished, even at stop
                await previous

    async def _handle(
        self,
        subscription: Subscription,
        batch: PreparedBatch,
        stop: asyncio.Event,
        previous: asyncio.Task[bool] | None,
    ) -> bool:
        """Store ``batch``, wait for the previous batch's handling to end, then acknowledge
        ``batch``; False if stopped before it was stored."""
        report = await self._retry(
            "store batch", functools.partial(self._ingest.store, batch), stop
        )
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is the loop's to raise
        if report is None:
            log.info(
                "stopping with %d unacknowledged messages (redelivered later)",
                len(batch.deliveries),
            )
            return False
        acked = await self._retry(
            "ack", functools.partial(_ack, subscription, batch.deliveries), stop
        )
        if acked is None:
            # The orders are stored; redelivery will count them as duplicates.
            log.info("stopping before the ack of a stored batch (duplicates on restart)")
        self.stats.batches += 1
        self.stats.received += report.received
        self.stats.inserted += report.inserted
        self.stats.duplicates += report.duplicates
        self.stats.dead_lettered += report.dead_lettered
        if self._on_batch is not None:
            self._on_batch(report)
        log.info(
            "batch: %d received, %d inserted, %d duplicates, %d dead-lettered",
            report.received,
            report.inserted,
            report.duplicates,
            report.dead_lettered,
        )
        return True
