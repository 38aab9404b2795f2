"""An in-process dead-letter store: the reference model of ``DeadLetterStore``."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import StorageError
from core.ports.bus import OutgoingMessage


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
