"""An in-process dead-letter store: the reference model of ``DeadLetterStore``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from core.errors import StorageError
from core.ports.bus import OutgoingMessage
from core.ports.dead_letters import KeptDeadLetter


class MemoryDeadLetterStore:
    def __init__(self) -> None:
        self.available = True
        self.kept: dict[str, tuple[str, OutgoingMessage]] = {}

    async def keep(self, topic: str, letters: Sequence[OutgoingMessage]) -> int:
        if not self.available:
            raise StorageError("in-memory dead-letter store is marked unavailable")
        new = 0
        for index, letter in enumerate(letters):
            key = letter.key or f"unkeyed:{index}"
            if key not in self.kept:
                self.kept[key] = (topic, letter)
                new += 1
        return new

    async def count(self) -> int:
        return len(self.kept)


class MemoryDeadLetterArchive:
    """Dead letters held in a list: the reference model of ``DeadLetterArchive``."""

    def __init__(self, letters: Sequence[KeptDeadLetter] = (), *, name: str = "memory") -> None:
        self.name = name
        self.letters = list(letters)

    async def scan(self, since: datetime | None = None) -> AsyncIterator[KeptDeadLetter]:
        for letter in list(self.letters):
            if since is None or letter.stored_at is None or letter.stored_at >= since:
                yield letter

    async def get(self, ref: str) -> KeptDeadLetter | None:
        return next((letter for letter in self.letters if letter.ref == ref), None)

    async def close(self) -> None:
        return None
