"""The log writer: consumes audit events in batches and appends each batch to the log store in
one write, acknowledging the broker only after the write succeeded.

- A batch closes at ``batch_size`` events or ``batch_ms`` milliseconds after its first event,
  whichever comes first.
- A failed write keeps the batch in hand, unacknowledged, and retries it with backoff; stopping
  meanwhile closes the subscription without ack, so the broker delivers the batch again.
- A crash between write and ack redelivers events already stored; the log store is idempotent by
  event id, so they never show twice.
- A payload that is not an audit event cannot ever be stored: it is logged and acknowledged so
  it does not block the stream.
"""

from __future__ import annotations

import asyncio
import logging

import attrs

from core import tracing
from core.catalog.events import GoodEvent
from core.errors import BrokerUnavailable, LogStoreError
from core.ports.audit import LogStore
from core.ports.bus import Delivery, EventSource, Subscription
from core.retry import Backoff, RetryHook, no_retry_hook, wait_or_stop

log = logging.getLogger(__name__)


@attrs.define(kw_only=True)
class LogWriterStats:
    written: int = 0
    batches: int = 0
    rejected: int = 0
    store_failures: int = 0
    broker_failures: int = 0


def _default_backoff(backoff: Backoff | None) -> Backoff:
    return backoff or Backoff(initial=0.1)


@attrs.define(kw_only=True, eq=False, on_setattr=attrs.setters.NO_OP)
class LogWriter:
    _source: EventSource = attrs.field(kw_only=False)
    _store: LogStore = attrs.field(kw_only=False)
    _topic: str
    _group: str
    _batch_size: int = 1000
    _batch_ms: int = 500
    _idle_wait: float = 1.0
    _backoff: Backoff = attrs.field(default=None, converter=_default_backoff)
    _on_retry: RetryHook = no_retry_hook
    _attempt: int = attrs.field(init=False, default=0)  # consecutive broker failures
    stats: LogWriterStats = attrs.field(init=False, factory=LogWriterStats)

    async def collect(self, subscription: Subscription) -> list[Delivery]:
        """One batch: wait up to ``idle_wait`` for a first event, then fill up to
        ``batch_size`` events or until ``batch_ms`` after that first event."""
        loop = asyncio.get_running_loop()
        batch = await subscription.fetch(self._batch_size, self._idle_wait)
        if not batch:
            return []
        deadline = loop.time() + self._batch_ms / 1000
        while len(batch) < self._batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            batch.extend(await subscription.fetch(self._batch_size - len(batch), remaining))
        return batch

    def decode(self, batch: list[Delivery]) -> list[GoodEvent]:
        events: list[GoodEvent] = []
        for delivery in batch:
            try:
                events.append(GoodEvent.from_json(delivery.data))
            except ValueError as exc:
                self.stats.rejected += 1
                log.error("log writer: not an audit event at %s: %s", dict(delivery.source), exc)
        return events

    async def store(self, events: list[GoodEvent], stop: asyncio.Event) -> bool:
        """Append ``events`` until it succeeds (True) or ``stop`` is set (False)."""
        attempt = 0
        while True:
            try:
                await self._store.append(events)
                return True
            except LogStoreError as exc:
                self.stats.store_failures += 1
                self._on_retry("store", exc)
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning("log writer: store failed (%s); batch kept, retry in %.2fs", exc, delay)
                await wait_or_stop(stop, delay)
                if stop.is_set():
                    return False

    async def write_and_ack(
        self, subscription: Subscription, batch: list[Delivery], stop: asyncio.Event
    ) -> bool:
        """Store ``batch`` (retrying while the store is down), then acknowledge it. False if
        ``stop`` was set before the store succeeded: the batch is left unacknowledged.
        Traced as one ``process`` span (the OpenTelemetry messaging conventions for a batch:
        linked to each message's context, its child when they share one)."""
        headers = (d.headers for d in batch)
        with tracing.process_span(self._topic, self._group, headers, len(batch)):
            if not await self.store(self.decode(batch), stop):
                return False
            with tracing.span(f"ack {self._topic}", attributes=tracing.SETTLE):
                await subscription.ack(batch)
        self.stats.written += len(batch)
        self.stats.batches += 1
        self._attempt = 0
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, write and ack until ``stop`` is set; the batch in hand is finished first
        (or, if the store is still down, left unacknowledged for redelivery).

        Two batches overlap: while one is written and acknowledged, the next is fetched (not
        written: at most one write at a time, in fetch order). A batch is acknowledged only
        after its own write; the fetched one is never acknowledged before it was written."""
        subscription: Subscription | None = None
        in_hand: asyncio.Future[bool] | None = None
        try:
            while not stop.is_set():
                try:
                    if subscription is None:
                        subscription = await self._source.subscribe(self._topic, self._group)
                    batch = await self.collect(subscription)
                    if in_hand is not None:
                        previous, in_hand = in_hand, None
                        if not await previous:
                            break
                    if batch:
                        in_hand = asyncio.ensure_future(
                            self.write_and_ack(subscription, batch, stop)
                        )
                except BrokerUnavailable as exc:
                    self.stats.broker_failures += 1
                    self._on_retry("consume", exc)
                    delay = self._backoff.delay(self._attempt)
                    self._attempt += 1
                    log.warning("log writer: broker failed (%s); retry in %.2fs", exc, delay)
                    if in_hand is not None:
                        await _settle(in_hand)
                        in_hand = None
                    if subscription is not None:
                        await _close_quietly(subscription)
                        subscription = None
                    await wait_or_stop(stop, delay)
        finally:
            if in_hand is not None:
                await _settle(in_hand)
            if subscription is not None:
                await _close_quietly(subscription)


async def _settle(in_hand: asyncio.Future[bool]) -> None:
    """Let the batch in hand finish its write and ack; an ack the broker refuses leaves it
    unacknowledged (redelivered, and the store drops the copy)."""
    try:
        await in_hand
    except BrokerUnavailable as exc:
        log.warning("log writer: ack of the batch in hand failed (%s); it will be redelivered", exc)


async def _close_quietly(subscription: Subscription) -> None:
    try:
        await subscription.close()
    except BrokerUnavailable as exc:
        log.info("log writer: closing subscription: %s", exc)
