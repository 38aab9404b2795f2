"""Dead letters read and put back by people (``hexmarket dlq``): list them with counts per
reason, show one envelope with its payload decoded, and replay selected ones, i.e. publish their
original payloads to the orders topic again (after a producer or a rule was fixed).

Replay is safe to repeat: ingest is idempotent by ``order_uid`` (an order stored already is a
counted duplicate), and each replayed message is keyed ``replay:<dead letter id>``, so JetStream
drops a second replay of the same letter within its duplicate window. A dead letter whose payload
was cut (the bounded envelope, ``payload_truncated: true``) no longer holds the original message
and is never replayed: it is reported and counted. Nothing is deleted from an archive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from core.errors import MessageRefused
from core.ports.bus import EventPublisher, OutgoingMessage
from core.ports.dead_letters import DeadLetterArchive, KeptDeadLetter

#: The reason of an archived document that is not a dead-letter envelope at all.
UNREADABLE = "unreadable_envelope"
#: Header naming, on a replayed message, the dead letter it came from.
REPLAY_HEADER = "hexmarket-replay-of"


@attrs.frozen(kw_only=True)
class DeadLetter:
    """A dead letter read from an archive. ``id`` is ``<archive>:<ref>`` (``kafka:2/1041``,
    ``nats:17``, ``pg:dlq:17/ORDERS``). ``payload`` is the message as the envelope keeps it
    (decoded from its ``payload_encoding``; ``None`` when the envelope is unreadable);
    ``complete`` says whether that is the whole original message."""

    id: str
    reason: str
    errors: Sequence[Mapping[str, Any]]
    source: Mapping[str, Any]
    received_at: datetime | None
    stored_at: datetime | None
    key: str | None
    payload: bytes | None
    payload_encoding: str
    complete: bool
    envelope: Mapping[str, Any]

    @property
    def truncated(self) -> bool:
        """The payload was cut (a bounded envelope): the original cannot be replayed."""
        return self.payload is not None and not self.complete

    @property
    def when(self) -> datetime | None:
        """When the consumer refused it (``received_at``), else when it was stored."""
        return self.received_at or self.stored_at


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _payload(envelope: Mapping[str, Any]) -> tuple[bytes | None, str]:
    text, encoding = envelope.get("payload"), envelope.get("payload_encoding", "utf-8")
    if not isinstance(text, str):
        return None, str(encoding)
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True), encoding
        except (binascii.Error, ValueError):
            return None, encoding
    if encoding == "utf-8":
        try:
            return text.encode("utf-8"), encoding
        except UnicodeEncodeError:  # a lone surrogate: not text an envelope can hold
            return None, encoding
    return None, str(encoding)


def read_dead_letter(archive: str, kept: KeptDeadLetter) -> DeadLetter:
    """The dead letter ``kept`` holds; a document that is not an envelope (someone else
    published there) is reason ``unreadable_envelope``, never replayable."""
    envelope: Any
    try:
        envelope = json.loads(kept.data)
    except (ValueError, UnicodeDecodeError):
        envelope = None
    ident = f"{archive}:{kept.ref}"
    if not isinstance(envelope, dict) or not isinstance(envelope.get("reason"), str):
        return DeadLetter(
            id=ident,
            reason=UNREADABLE,
            errors=(),
            source={},
            received_at=None,
            stored_at=kept.stored_at,
            key=None,
            payload=None,
            payload_encoding="",
            complete=False,
            envelope={},
        )
    payload, encoding = _payload(envelope)
    complete = payload is not None
    if payload is not None and envelope.get("payload_truncated"):
        # A bounded envelope still holds the whole message when it was within the limit: the
        # size and digest of the original say so.
        complete = (
            envelope.get("payload_size") == len(payload)
            and envelope.get("payload_sha256") == hashlib.sha256(payload).hexdigest()
        )
    errors = envelope.get("errors")
    source = envelope.get("source")
    key = envelope.get("key")
    return DeadLetter(
        id=ident,
        reason=envelope["reason"],
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
        source=source if isinstance(source, dict) else {},
        received_at=_timestamp(envelope.get("received_at")),
        stored_at=kept.stored_at,
        key=key if isinstance(key, str) else None,
        payload=payload,
        payload_encoding=encoding,
        complete=complete,
        envelope=envelope,
    )


@attrs.frozen(kw_only=True)
class Selection:
    """Which dead letters: every condition given must hold (none given: all of them).
    ``since`` / ``until`` compare with ``DeadLetter.when``, ``since`` inclusive, ``until``
    exclusive."""

    reasons: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def everything(self) -> bool:
        return not (self.reasons or self.ids or self.since or self.until)

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.ids and letter.id not in self.ids:
            return False
        when = letter.when
        if self.since is not None and (when is None or when < self.since):
            return False
        return self.until is None or (when is not None and when < self.until)


@attrs.frozen(kw_only=True)
class Listing:
    """``letters``: the first ``limit`` selected; ``by_reason``: every selected one, counted."""

    letters: Sequence[DeadLetter]
    by_reason: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@attrs.define(kw_only=True)
class ReplayReport:
    selected: int = 0
    replayed: list[str] = attrs.field(factory=list)
    #: ids of dead letters whose payload was cut (bounded envelope): cannot be replayed
    truncated: list[str] = attrs.field(factory=list)
    #: ids of archived documents that are not envelopes
    unreadable: list[str] = attrs.field(factory=list)
    #: id -> why the broker refused the replayed message
    refused: dict[str, str] = attrs.field(factory=dict)
    dry_run: bool = False


class DeadLetterQueue:
    """The dead letters of every archive given (the dead-letter topic, the PostgreSQL table),
    read without disturbing anyone; ``publisher`` and ``orders_topic`` are where a replay
    goes."""

    def __init__(
        self,
        archives: Sequence[DeadLetterArchive],
        *,
        publisher: EventPublisher | None = None,
        orders_topic: str = "orders",
    ) -> None:
        self._archives = list(archives)
        self._publisher = publisher
        self._orders_topic = orders_topic

    async def select(self, selection: Selection) -> AsyncIterator[DeadLetter]:
        """The selected dead letters, archive by archive."""
        for archive in self._archives:
            prefix = archive.name + ":"
            if selection.ids and not any(i.startswith(prefix) for i in selection.ids):
                continue
            async for kept in archive.scan(since=selection.since):
                letter = read_dead_letter(archive.name, kept)
                if selection.matches(letter):
                    yield letter

    async def list(self, selection: Selection, *, limit: int = 50) -> Listing:
        """The first ``limit`` selected dead letters, and how many were selected by reason."""
        letters: list[DeadLetter] = []
        counts: Counter[str] = Counter()
        async for letter in self.select(selection):
            counts[letter.reason] += 1
            if len(letters) < limit:
                letters.append(letter)
        return Listing(letters=letters, by_reason=dict(counts.most_common()))

    async def show(self, ident: str) -> DeadLetter | None:
        """The dead letter of id ``<archive>:<ref>``, or ``None``."""
        name, _, ref = ident.partition(":")
        for archive in self._archives:
            if archive.name == name and ref:
                kept = await archive.get(ref)
                return None if kept is None else read_dead_letter(name, kept)
        return None

    async def replay(
        self,
        selection: Selection,
        *,
        dry_run: bool = False,
        chunk: int = 500,
        on_selected: Callable[[int], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ReplayReport:
        """Publish the original payload of every selected dead letter to the orders topic,
        ``chunk`` at a time (``dry_run``: only report what would be). ``on_selected`` is called
        once with how many will be published, ``progress`` with each chunk's size. Truncated
        and unreadable ones are skipped and reported; one the broker refuses (too large) is
        reported, the others go on. Raises ``BrokerUnavailable``: what was published before
        stays published (a second run is safe)."""
        report = ReplayReport(dry_run=dry_run)
        ready: list[DeadLetter] = []
        async for letter in self.select(selection):
            report.selected += 1
            if letter.payload is None:
                report.unreadable.append(letter.id)
            elif letter.truncated:
                report.truncated.append(letter.id)
            else:
                ready.append(letter)
        if on_selected is not None:
            on_selected(len(ready))
        if dry_run:
            report.replayed = [letter.id for letter in ready]
            return report
        if ready and self._publisher is None:
            raise ValueError("replay needs a publisher")
        for start in range(0, len(ready), max(1, chunk)):
            part = ready[start : start + max(1, chunk)]
            await self._publish(part, report)
            if progress is not None:
                progress(len(part))
        return report

    async def _publish(self, letters: Sequence[DeadLetter], report: ReplayReport) -> None:
        assert self._publisher is not None
        messages = [replay_message(letter) for letter in letters]
        try:
            await self._publisher.publish(self._orders_topic, messages)
            refused: Iterable[int] = ()
        except MessageRefused as exc:
            refused = exc.refused
            for index in exc.refused:
                report.refused[letters[index].id] = str(exc)
        skip = set(refused)
        report.replayed.extend(letter.id for i, letter in enumerate(letters) if i not in skip)


def replay_message(letter: DeadLetter) -> OutgoingMessage:
    """The message a replay publishes: the original payload, keyed by the dead letter."""
    assert letter.payload is not None
    return OutgoingMessage(
        data=letter.payload, key=f"replay:{letter.id}", headers={REPLAY_HEADER: letter.id}
    )
