"""Order ingest: validate a batch of broker messages, store the valid ones in one transaction,
dead-letter the invalid ones, and only then acknowledge the batch.

The effect is exactly once: the broker delivers at least once, the repository's write is
idempotent by ``order_uid``, and acknowledgement strictly follows the database commit. Transient
failures (``StorageError``, ``BrokerUnavailable``) are retried with capped exponential backoff
and full jitter, forever (until asked to stop); they never dead-letter or skip a message.
Permanent ones are handled for the one message they concern: a dead letter the broker refuses
(``MessageRefused``: too large, say) is published again as a bounded envelope, and one refused
even then is kept in the ``DeadLetterStore``; the batch goes on either way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from core import tracing
from core.errors import InfrastructureError, MessageRefused
from core.orders.model import Order
from core.orders.parsing import OrderParser, Rejection, parse_order
from core.ports.bus import Delivery, EventPublisher, EventSource, OutgoingMessage, Subscription
from core.ports.clock import Clock
from core.ports.orders import DeadLetterStore, OrderRepository
from core.retry import Backoff, RetryHook, Stopped, no_retry_hook, until_stopped, wait_or_stop

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen(kw_only=True, slots=True)
class BatchReport:
    received: int
    inserted: int
    duplicates: int
    dead_lettered: int
    #: dead letters published as a bounded envelope (the broker refused them whole)
    truncated: int = 0
    #: dead letters the broker refused even bounded, kept in the ``DeadLetterStore``
    kept: int = 0
    #: the dead letters by reason (``malformed_json``, ``invalid_order``...)
    reasons: Mapping[str, int] = attrs.field(factory=dict)


#: Errors listed in a bounded dead letter, at most (the rest are counted).
BOUNDED_ERRORS = 50
_BOUNDED_KEY = 256


def dead_letter_envelope(
    delivery: Delivery, rejection: Rejection, received_at: str, *, limit: int | None = None
) -> dict[str, Any]:
    """The dead-letter document: ``{reason, errors, source, received_at, key, payload,
    payload_encoding}``. ``payload`` is always present and keeps the message verbatim: its text
    when the bytes are UTF-8 (``payload_encoding`` ``"utf-8"``), else the exact bytes in
    standard base64 (``payload_encoding`` ``"base64"``).

    With ``limit`` (the bounded envelope, for a message whose whole envelope the broker
    refused) ``payload`` keeps only the first ``limit`` bytes of the message (cut back to a
    whole UTF-8 character), and ``payload_truncated: true``, ``payload_size`` (bytes) and
    ``payload_sha256`` (hex) identify the original; ``errors`` keeps the first
    ``BOUNDED_ERRORS`` (``errors_omitted`` counts the rest) and ``key`` its first 256
    characters."""
    data = delivery.data
    errors = rejection.errors_as_json()
    key = delivery.key
    extra: dict[str, Any] = {}
    if limit is not None:
        extra = {
            "payload_truncated": True,
            "payload_size": len(data),
            "payload_sha256": hashlib.sha256(data).hexdigest(),
        }
        if len(errors) > BOUNDED_ERRORS:
            extra["errors_omitted"] = len(errors) - BOUNDED_ERRORS
            errors = errors[:BOUNDED_ERRORS]
        if key is not None:
            key = key[:_BOUNDED_KEY]
    try:
        payload, encoding = data.decode("utf-8"), "utf-8"
        if limit is not None:
            payload = data[: max(limit, 0)].decode("utf-8", errors="ignore")
    except UnicodeDecodeError:
        cut = data if limit is None else data[: max(limit, 0)]
        payload, encoding = base64.b64encode(cut).decode("ascii"), "base64"
    return {
        "reason": rejection.reason,
        "errors": errors,
        "source": dict(delivery.source),
        "received_at": received_at,
        "key": key,
        "payload": payload,
        "payload_encoding": encoding,
        **extra,
    }


@attrs.frozen(kw_only=True)
class PreparedBatch:
    """A batch after parsing: the messages as delivered, the valid orders, the dead letters
    (``rejected`` holds, for each of ``dead``, the delivery and why it was refused)."""

    deliveries: Sequence[Delivery]
    orders: Sequence[Order]
    dead: Sequence[OutgoingMessage]
    rejected: Sequence[tuple[Delivery, Rejection]] = ()
    received_at: str = ""


def _source_id(delivery: Delivery) -> str:
    return "/".join(str(delivery.source[k]) for k in sorted(delivery.source))


@attrs.define(kw_only=True, eq=False)
class IngestOrders:
    """The ingest use case for one batch. ``handle`` returns once the valid orders are
    committed and the dead letters acknowledged by the broker; the caller then acks the batch.
    It raises ``StorageError`` / ``BrokerUnavailable`` with nothing to acknowledge (a retry of
    the same batch is safe: stored orders come back as duplicates, and dead letters are
    re-published under the same de-duplication key).

    ``parse`` turns message bytes into an ``Order`` or a ``Rejection``; the default is the
    reference ``parse_order``, and any replacement must agree with it. ``payload_limit`` bounds
    the payload of a dead letter the broker refused whole; ``dead_letters`` keeps those refused
    even bounded (without one, such a batch fails with the broker's ``MessageRefused``)."""

    _repository: OrderRepository
    _publisher: EventPublisher
    _dlq_topic: str
    _clock: Clock
    _parse: OrderParser = parse_order
    _dead_letters: DeadLetterStore | None = None
    _payload_limit: int = 65536

    async def handle(self, deliveries: Sequence[Delivery]) -> BatchReport:
        """``store(prepare(deliveries))``."""
        return await self.store(self.prepare(deliveries))

    def prepare(self, deliveries: Sequence[Delivery]) -> PreparedBatch:
        """Parse and validate the batch, and build the dead letters of the invalid messages.
        Pure computation: no I/O, never raises for any message content."""
        orders: list[Order] = []
        dead: list[OutgoingMessage] = []
        rejected: list[tuple[Delivery, Rejection]] = []
        received_at = self._clock.now().isoformat()
        parse = self._parse
        for delivery in deliveries:
            parsed = parse(delivery.data)
            if isinstance(parsed, Order):
                orders.append(parsed)
                continue
            dead.append(_dead_letter(delivery, parsed, received_at, None))
            rejected.append((delivery, parsed))
        return PreparedBatch(
            deliveries=tuple(deliveries),
            orders=orders,
            dead=dead,
            rejected=rejected,
            received_at=received_at,
        )

    async def store(self, batch: PreparedBatch) -> BatchReport:
        """Commit the valid orders, then publish the dead letters. Safe to repeat."""
        inserted = duplicates = 0
        if batch.orders:
            result = await self._repository.add_many(batch.orders)
            inserted, duplicates = result.inserted, result.duplicates
        truncated = kept = 0
        if batch.dead:
            truncated, kept = await self._publish_dead(batch)
        return BatchReport(
            received=len(batch.deliveries),
            inserted=inserted,
            duplicates=duplicates,
            dead_lettered=len(batch.dead),
            truncated=truncated,
            kept=kept,
            reasons=dict(Counter(rejection.reason for _, rejection in batch.rejected)),
        )

    async def _publish_dead(self, batch: PreparedBatch) -> tuple[int, int]:
        """Publish the dead letters; those the broker refuses whole go again bounded, and those
        refused even then into the dead-letter store. Returns ``(truncated, kept)``."""
        try:
            await self._publisher.publish(self._dlq_topic, batch.dead)
            return 0, 0
        except MessageRefused as exc:
            if len(batch.rejected) != len(batch.dead):
                raise
            refused = [batch.rejected[i] for i in exc.refused]
            log.warning("the broker refused %d dead letter(s) whole: %s", len(refused), exc)
        bounded = [
            _dead_letter(delivery, rejection, batch.received_at, self._payload_limit)
            for delivery, rejection in refused
        ]
        try:
            await self._publisher.publish(self._dlq_topic, bounded)
            return len(bounded), 0
        except MessageRefused as exc:
            if self._dead_letters is None:
                raise
            kept = [bounded[i] for i in exc.refused]
            log.error(
                "the broker refused %d bounded dead letter(s); keeping them in the dead-letter"
                " store: %s",
                len(kept),
                exc,
            )
        await self._dead_letters.keep(self._dlq_topic, kept)
        return len(bounded) - len(kept), len(kept)


def _dead_letter(
    delivery: Delivery, rejection: Rejection, received_at: str, limit: int | None
) -> OutgoingMessage:
    envelope = dead_letter_envelope(delivery, rejection, received_at, limit=limit)
    return OutgoingMessage(
        data=json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
        key=f"dlq:{_source_id(delivery)}",
        headers={"reason": rejection.reason},
    )


@attrs.define(kw_only=True)
class ConsumerStats:
    batches: int = 0
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    truncated: int = 0
    kept: int = 0
    retries: int = 0


async def _ack(subscription: Subscription, deliveries: Sequence[Delivery]) -> bool:
    await subscription.ack(deliveries)
    return True


def _default_backoff(backoff: Backoff | None) -> Backoff:
    return backoff or Backoff()


@attrs.define(kw_only=True, eq=False, on_setattr=attrs.setters.NO_OP)
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

    _source: EventSource
    _topic: str
    _group: str
    _ingest: IngestOrders
    _batch_size: int
    _batch_timeout: float
    _backoff: Backoff = attrs.field(default=None, converter=_default_backoff)
    _on_batch: Callable[[BatchReport], None] | None = None
    _on_retry: RetryHook = no_retry_hook
    stats: ConsumerStats = attrs.field(init=False, factory=ConsumerStats)

    async def _retry(
        self, what: str, call: Callable[[], Awaitable[T]], stop: asyncio.Event
    ) -> T | None:
        """``call()`` until it succeeds; ``None`` if ``stop`` was set while failing, or if a
        call was still running ``STOP_GRACE`` seconds after stop was asked (then cancelled)."""
        attempt = 0
        while True:
            try:
                return await until_stopped(stop, call())
            except Stopped:
                log.info("%s abandoned: stopping", what)
                return None
            except InfrastructureError as exc:
                self.stats.retries += 1
                self._on_retry(what.split()[0], exc)
                delay = self._backoff.delay(attempt)
                log.warning(
                    "%s failed, retrying in %.2fs (attempt %d): %s", what, delay, attempt + 1, exc
                )
                attempt += 1
                if stop.is_set():
                    return None
                await wait_or_stop(stop, delay)
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
        headers = (d.headers for d in batch.deliveries)
        with tracing.process_span(self._topic, self._group, headers, len(batch.deliveries)):
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
            with tracing.span(f"ack {self._topic}", attributes=tracing.SETTLE):
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
        self.stats.truncated += report.truncated
        self.stats.kept += report.kept
        if self._on_batch is not None:
            self._on_batch(report)
        log.info(
            "batch: %d received, %d inserted, %d duplicates, %d dead-lettered",
            report.received,
            report.inserted,
            report.duplicates,
            report.dead_lettered,
            extra={
                "received": report.received,
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "dead_lettered": report.dead_lettered,
                "truncated": report.truncated,
                "kept": report.kept,
            },
        )
        return True
