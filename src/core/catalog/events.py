"""Audit events: one per changed good, written to the outbox in the changing transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import attrs

from core.catalog.models import Good, GoodState

EventType = Literal["create", "update", "remove", "reprioritize"]

#: ``GoodState``'s field names, which ``GoodEvent.of`` copies from the good (read once: a
#: reprioritize of 100,000 goods makes 100,000 events).
_STATE_FIELDS = tuple(f.name for f in attrs.fields(GoodState))


def _same_event(event: GoodEvent) -> uuid.UUID:
    return event.event_id


def _same_good(event: GoodEvent) -> int:
    return event.id


@attrs.frozen(kw_only=True)
class GoodEvent(GoodState):
    """The state of a good (``GoodState``) right after a change. ``event_id`` is the
    de-duplication id all the way to the log store.

    One change can touch several goods (a reprioritize shifts the goods after the target):
    its events share ``change_id`` and ``event_time`` and name the good the change was made to
    in ``target_id``. ``before_*`` hold what the change replaced (``None``: not changed, or not
    known for events recorded before these fields existed, whose ``change_id`` is their own
    ``event_id`` and ``target_id`` their own good)."""

    event_id: uuid.UUID
    type: EventType
    event_time: datetime
    change_id: uuid.UUID = attrs.field(default=attrs.Factory(_same_event, takes_self=True))
    target_id: int = attrs.field(default=attrs.Factory(_same_good, takes_self=True))
    before_priority: int | None = None
    before_name: str | None = None
    before_description: str | None = None

    @property
    def is_target(self) -> bool:
        """``True`` for the good the change was made to, ``False`` for one it shifted."""
        return self.target_id == self.id

    @classmethod
    def of(
        cls,
        good: Good,
        type_: EventType,
        *,
        event_id: uuid.UUID,
        event_time: datetime,
        change_id: uuid.UUID | None = None,
        target_id: int | None = None,
        before: Good | None = None,
    ) -> GoodEvent:
        """The event of ``good`` after a change; ``before`` is the good as it was (its
        changed fields become ``before_*``)."""
        return cls(
            **{name: getattr(good, name) for name in _STATE_FIELDS},
            event_id=event_id,
            type=type_,
            event_time=event_time,
            change_id=change_id or event_id,
            target_id=good.id if target_id is None else target_id,
            before_priority=None if before is None else _changed(before.priority, good.priority),
            before_name=None if before is None else _changed(before.name, good.name),
            before_description=(
                None if before is None else _changed(before.description, good.description)
            ),
        )

    def to_json(self) -> bytes:
        """UTF-8 JSON with exactly the keys ``event_id, type, id, project_id, name,
        description, priority, removed, event_time, change_id, target_id, before_priority,
        before_name, before_description``; ``event_time`` RFC 3339 in UTC; ``before_*``
        ``null`` when unchanged."""
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
                "change_id": str(self.change_id),
                "target_id": self.target_id,
                "before_priority": self.before_priority,
                "before_name": self.before_name,
                "before_description": self.before_description,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> GoodEvent:
        """The inverse of ``to_json``. Raises ``ValueError`` on a malformed document. A
        document without the change fields (written by an earlier version) is its own change."""
        raw = json.loads(data)
        try:
            event_id = uuid.UUID(raw["event_id"])
            good_id = int(raw["id"])
            return cls(
                event_id=event_id,
                type=raw["type"],
                id=good_id,
                project_id=int(raw["project_id"]),
                name=str(raw["name"]),
                description=str(raw["description"]),
                priority=int(raw["priority"]),
                removed=bool(raw["removed"]),
                event_time=datetime.fromisoformat(raw["event_time"]).astimezone(UTC),
                change_id=uuid.UUID(raw["change_id"]) if raw.get("change_id") else event_id,
                target_id=int(raw.get("target_id") or good_id),
                before_priority=_optional(raw.get("before_priority"), int),
                before_name=_optional(raw.get("before_name"), str),
                before_description=_optional(raw.get("before_description"), str),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a good event: {exc}") from exc


T = TypeVar("T")


def _changed(before: T | None, after: T) -> T | None:
    return None if before is None or before == after else before


def _optional(value: object, kind: Callable[[Any], T]) -> T | None:
    return None if value is None else kind(value)


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with microseconds and a ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
