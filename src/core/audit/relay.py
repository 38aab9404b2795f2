"""The outbox relay: moves audit events from the outbox (written in the transaction of each
catalog change) to the broker, and marks them sent only after the broker acknowledged them.

Loss is impossible by construction: an event leaves the outbox's unsent set only in the
transaction that follows a successful publish. A crash or outage anywhere before that commit
leaves it unsent, to be published again; the duplicate this can create is dropped by the broker
(JetStream's duplicate window, keyed by event id) or by the log store (idempotent by event id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import attrs

from core import tracing
from core.errors import BrokerUnavailable, StorageError
from core.ports.audit import OutboxRelayStore, PendingEvent
from core.ports.bus import EventPublisher, OutgoingMessage
from core.retry import Backoff, RetryHook, first_of, no_retry_hook, wait_or_stop
from core.tracing import Carrier

log = logging.getLogger(__name__)


@attrs.define(kw_only=True)
class RelayStats:
    published: int = 0
    rounds: int = 0
    failures: int = 0
    pruned: int = 0


#: Sent records deleted per prune statement: a short transaction that never holds the relay.
PRUNE_BATCH = 1000


def _at_least_one(lanes: int) -> int:
    return max(1, lanes)


def _default_backoff(backoff: Backoff | None) -> Backoff:
    return backoff or Backoff(initial=0.1)


@attrs.define(kw_only=True, eq=False, on_setattr=attrs.setters.NO_OP)
class OutboxRelay:
    """``batch_size`` events per round; with fewer pending, it waits for the outbox's
    new-event signal, or ``idle_wait`` seconds at most (the bound on a missed signal).

    ``lanes`` rounds run at once, each with its own claim (disjoint, like several relays'),
    so one round's database work overlaps another's wait for broker acks. Each round still
    marks its own batch sent only after the broker acknowledged all of it. With more than one
    lane, batches may reach the broker out of outbox order (as with several relays); with
    ``lanes=1`` they keep it.

    With ``keep_sent`` (seconds), sent records older than that are deleted while the relay is
    idle, ``PRUNE_BATCH`` at a time and at most once per ``prune_every`` seconds while there is
    nothing to prune: never in a round, so pruning does not slow the relay down."""

    _store: OutboxRelayStore = attrs.field(kw_only=False)
    _publisher: EventPublisher = attrs.field(kw_only=False)
    _batch_size: int = 1000
    _idle_wait: float = 1.0
    _lanes: int = attrs.field(default=2, converter=_at_least_one)
    _backoff: Backoff = attrs.field(default=None, converter=_default_backoff)
    _keep_sent: float | None = None
    _prune_every: float = 60.0
    _on_retry: RetryHook = no_retry_hook
    _next_prune: float = attrs.field(init=False, default=0.0)
    _attempt: int = attrs.field(init=False, default=0)  # consecutive failed rounds
    stats: RelayStats = attrs.field(init=False, factory=RelayStats)

    @property
    def lanes(self) -> int:
        """How many claim/publish rounds run at once."""
        return self._lanes

    async def relay_once(self) -> int:
        """Claim one batch, publish it (grouped by topic, order kept), mark it sent. Returns
        how many events were published. Raises ``BrokerUnavailable`` / ``StorageError``; the
        batch then stays unsent."""
        async with self._store.claim(self._batch_size) as batch:
            records = list(batch.records)
            if not records:
                return 0
            tracer = tracing.tracer()
            if tracer is None:
                await self._publish(records)
            else:
                await self._publish_traced(tracer, records)
            await batch.mark_sent()
        self.stats.published += len(records)
        self.stats.rounds += 1
        return len(records)

    async def _publish(
        self, records: list[PendingEvent], headers: Sequence[Carrier] | None = None
    ) -> None:
        """Publish ``records`` grouped by topic, in order; ``headers``: each one's."""
        by_topic: dict[str, list[OutgoingMessage]] = {}
        for index, record in enumerate(records):
            by_topic.setdefault(record.topic, []).append(
                OutgoingMessage(
                    data=record.payload,
                    key=record.key,
                    headers={} if headers is None else headers[index],
                )
            )
        for topic, messages in by_topic.items():
            await self._publisher.publish(topic, messages)

    async def _publish_traced(self, tracer: tracing.Tracer, records: list[PendingEvent]) -> None:
        """``_publish`` continuing each record's trace: a ``create`` span per record, child
        of the change that wrote it and open until the broker acknowledged it, whose context
        the message carries; all within one ``relay`` span linked to those changes."""
        parents = [{tracing.TRACEPARENT: r.traceparent} if r.traceparent else {} for r in records]
        with tracer.span(
            "relay outbox",
            attributes={"messaging.batch.message_count": len(records)},
            links=parents,
        ):
            creates = [
                tracer.start(
                    f"create {record.topic}",
                    kind="producer",
                    parent=parent,
                    attributes={
                        "messaging.operation.type": "create",
                        "messaging.destination.name": record.topic,
                        "messaging.message.id": record.key,
                    },
                )
                if parent
                else None
                for record, parent in zip(records, parents, strict=True)
            ]
            try:
                await self._publish(
                    records, [{} if span is None else span.headers() for span in creates]
                )
            finally:
                for span in creates:
                    if span is not None:
                        span.end()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, backing off (with jitter) while a server is down.
        Rounds in flight when ``stop`` is set are finished (or fail) before this returns."""
        rounds: set[asyncio.Task[int]] = set()
        try:
            while not stop.is_set():
                drained = False
                while len(rounds) < self._lanes:
                    rounds.add(asyncio.ensure_future(self.relay_once()))
                while rounds and not stop.is_set():
                    done, rounds = await asyncio.wait(rounds, return_when=asyncio.FIRST_COMPLETED)
                    failure = _first_failure(done)
                    if failure is not None:
                        await self._settle(rounds)
                        rounds = set()
                        self.stats.failures += 1
                        self._on_retry("relay", failure)
                        delay = self._backoff.delay(self._attempt)
                        self._attempt += 1
                        log.warning("outbox relay: %s; retrying in %.2fs", failure, delay)
                        await wait_or_stop(stop, delay)
                        break
                    self._attempt = 0
                    drained = drained or any(t.result() < self._batch_size for t in done)
                    if not drained:
                        rounds.add(asyncio.ensure_future(self.relay_once()))
                else:
                    if drained and not stop.is_set():
                        await self._prune()
                        await first_of(stop, self._store.wait_for_new(self._idle_wait))
        finally:
            await self._settle(rounds)

    async def _prune(self) -> None:
        """One batch of sent records past ``keep_sent``, if it is time to look."""
        loop = asyncio.get_running_loop()
        if self._keep_sent is None or loop.time() < self._next_prune:
            return
        try:
            pruned = await self._store.prune_sent(self._keep_sent, PRUNE_BATCH)
        except StorageError as exc:
            log.warning("outbox prune failed (%s); trying again later", exc)
            pruned = 0
        self.stats.pruned += pruned
        if pruned < PRUNE_BATCH:
            self._next_prune = loop.time() + self._prune_every

    @staticmethod
    async def _settle(rounds: set[asyncio.Task[int]]) -> None:
        """Let rounds in flight finish: each either marks its batch sent or leaves it unsent."""
        if rounds:
            await asyncio.wait(rounds)
            _first_failure(rounds)  # a port failure is the next round's to retry; others raise


def _first_failure(done: set[asyncio.Task[int]]) -> Exception | None:
    """The first relay failure among finished rounds; other exceptions propagate."""
    failure: Exception | None = None
    for task in done:
        exc = task.exception()
        if exc is None:
            continue
        if not isinstance(exc, BrokerUnavailable | StorageError):
            raise exc
        failure = failure or exc
    return failure
