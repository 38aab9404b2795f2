"""Audit events: one per changed good, written to the outbox in the changing transaction."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Literal

import attrs

from core.catalog.models import Good

EventType = Literal["create", "update", "remove", "reprioritize"]


@attrs.frozen(kw_only=True)
class GoodEvent:
    """The state of a good right after a change. ``event_id`` is the de-duplication id all
    the way to the log store."""

    event_id: uuid.UUID
    type: EventType
    id: int
    project_id: int
    name: str
    description: str
    priority: int
    removed: bool
    event_time: datetime

    @classmethod
    def of(
        cls, good: Good, type_: EventType, *, event_id: uuid.UUID, event_time: datetime
    ) -> GoodEvent:
        return cls(
            event_id=event_id,
            type=type_,
            id=good.id,
            project_id=good.project_id,
            name=good.name,
            description=good.description,
            priority=good.priority,
            removed=good.removed,
            event_time=event_time,
        )

    def to_json(self) -> bytes:
        """UTF-8 JSON with exactly the keys ``event_id, type, id, project_id, name,
        description, priority, removed, event_time``; ``event_time`` RFC 3339 in UTC."""
        return json.dumps(
            {
                "event_id": str(self.event_id),
                "type": self.type,
                "id": self.id,
                "project_id": self.project_id,
                "name": self.name,
                "description": self.description,
                "priority": self.priority,
                "removed": self.removed,
                "event_time": rfc3339(self.event_time),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> GoodEvent:
        """The inverse of ``to_json``. Raises ``ValueError`` on a malformed document."""
        raw = json.loads(data)
        try:
            return cls(
                event_id=uuid.UUID(raw["event_id"]),
                type=raw["type"],
                id=int(raw["id"]),
                project_id=int(raw["project_id"]),
                name=str(raw["name"]),
                description=str(raw["description"]),
                priority=int(raw["priority"]),
                removed=bool(raw["removed"]),
                event_time=datetime.fromisoformat(raw["event_time"]).astimezone(UTC),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a good event: {exc}") from exc


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with microseconds and a ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
