"""The dead-letter archive port: where dead letters are kept, read by people (``hexmarket dlq``).

An archive is read without changing anything: no consumer group moves on, nothing is
acknowledged, committed or deleted, so the consumers of the orders and of the dead-letter topic
never notice a reader. Adapters: the dead-letter topic on Kafka (its own consumer, assigned,
never committing), the dead-letter stream on JetStream (an ephemeral consumer, direct get by
sequence), the PostgreSQL ``dead_letters`` table (dead letters the broker refused even bounded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

import attrs


@attrs.frozen(kw_only=True, slots=True)
class KeptDeadLetter:
    """One dead letter as its archive holds it. ``ref`` is the archive's own address of it
    (Kafka ``<partition>/<offset>``, JetStream ``<stream seq>``, PostgreSQL the row's key);
    ``data`` the envelope exactly as published; ``stored_at`` when the archive stored it."""

    ref: str
    data: bytes
    stored_at: datetime | None = None


class DeadLetterArchive(Protocol):
    #: what the archive is, and the prefix of its dead letters' ids: ``kafka``, ``nats``,
    #: ``pg``, ``memory``
    name: str

    def scan(self, since: datetime | None = None) -> AsyncIterator[KeptDeadLetter]:
        """Every dead letter the archive held when the scan started (later arrivals are not
        waited for), oldest first (on Kafka: within each partition). With ``since``, letters
        stored before it may be skipped (callers still filter exactly). Raises
        ``BrokerUnavailable`` / ``StorageError`` when the server is unreachable."""
        ...

    async def get(self, ref: str) -> KeptDeadLetter | None:
        """The dead letter at ``ref``, or ``None`` if there is none (never was, or dropped by
        retention). A malformed ``ref`` is ``None`` too."""
        ...

    async def close(self) -> None:
        """Release the connection. Idempotent."""
        ...
