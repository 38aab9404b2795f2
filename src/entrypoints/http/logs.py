"""``GET /logs``: the audit events from the log store, newest first, optionally filtered by
project, good, event type and time, keyset-paged (``before``: the previous page's
``meta.next``). Events have the shape they travel in (``GoodEvent.to_json``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from core.catalog.events import rfc3339
from core.errors import ValidationError
from core.ports.audit import MAX_QUERY_LIMIT, LogCursor, LogQuery, LogStore
from entrypoints.http.dependencies import Resolver, log_store
from entrypoints.http.errors import BAD_REQUEST, UNAVAILABLE

DEFAULT_LIMIT = 100

#: What ``cursor_of`` writes (``<event_time>_<event_id>``), as the schema states it: a calendar
#: date (no February 29: a cursor is never hand-made), a time, microseconds, ``Z``, a UUID.
CURSOR_PATTERN = (
    r"^[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
    r"_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


class LogEventOut(msgspec.Struct):
    event_id: str
    type: str
    id: int
    project_id: int
    name: str
    description: str
    priority: int
    removed: bool
    event_time: str
    change_id: str
    target_id: int
    before_priority: int | None
    before_name: str | None
    before_description: str | None


class LogsMeta(msgspec.Struct):
    limit: int
    count: int
    next: str | None
    """Pass as ``before`` for the next page; ``null`` on the last page."""


class LogsOut(msgspec.Struct):
    meta: LogsMeta
    logs: list[LogEventOut]


@get(
    "/logs",
    summary="Audit events of goods, newest first",
    description=(
        "Filters combine; `limit` 1..1000 (default 100). Each event appears once. Events of "
        "one change share `change_id`; `target_id` is the good the change was made to. "
        "`before`: the previous page's `meta.next`."
    ),
    responses={
        200: ResponseSpec(LogsOut, description="The events"),
        **BAD_REQUEST,
        **UNAVAILABLE,
    },
    tags=["audit"],
)
async def list_logs(
    logs: NamedDependency[LogStore],
    project_id: Annotated[
        int | None,
        QueryParameter(name="projectId", description="Only this project's goods."),
    ] = None,
    good_id: Annotated[int | None, QueryParameter(name="id", description="Only this good.")] = None,
    limit: Annotated[
        int, QueryParameter(ge=1, le=MAX_QUERY_LIMIT, description="Most events returned.")
    ] = DEFAULT_LIMIT,
    types: Annotated[
        list[Literal["create", "update", "remove", "reprioritize"]] | None,
        QueryParameter(name="type", description="Only these event types (repeat for several)."),
    ] = None,
    since: Annotated[
        datetime | None, QueryParameter(description="Events at or after this instant (RFC 3339).")
    ] = None,
    until: Annotated[
        datetime | None, QueryParameter(description="Events before this instant (RFC 3339).")
    ] = None,
    before: Annotated[
        str | None,
        QueryParameter(
            description="Start after this cursor (`meta.next`).", pattern=CURSOR_PATTERN
        ),
    ] = None,
) -> LogsOut:
    events = await logs.query(
        LogQuery(
            project_id=project_id,
            good_id=good_id,
            types=types or (),
            since=_utc(since),
            until=_utc(until),
            before=None if before is None else parse_cursor(before),
            limit=limit,
        )
    )
    return LogsOut(
        meta=LogsMeta(
            limit=limit,
            count=len(events),
            next=cursor_of(LogCursor.after(events[-1])) if len(events) == limit else None,
        ),
        logs=[
            LogEventOut(
                event_id=str(e.event_id),
                type=e.type,
                id=e.id,
                project_id=e.project_id,
                name=e.name,
                description=e.description,
                priority=e.priority,
                removed=e.removed,
                event_time=rfc3339(e.event_time),
                change_id=str(e.change_id),
                target_id=e.target_id,
                before_priority=e.before_priority,
                before_name=e.before_name,
                before_description=e.before_description,
            )
            for e in events
        ],
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # an instant without an offset is read as UTC


def cursor_of(cursor: LogCursor) -> str:
    """``<event_time RFC 3339>_<event_id>``: opaque to clients, readable in logs."""
    return f"{rfc3339(cursor.event_time)}_{cursor.event_id}"


def parse_cursor(text: str) -> LogCursor:
    moment, _, event_id = text.partition("_")
    try:
        return LogCursor(
            event_time=datetime.fromisoformat(moment).astimezone(UTC),
            event_id=uuid.UUID(event_id),
        )
    except ValueError:
        raise ValidationError(
            details={"before": "must be a meta.next of an earlier page"}
        ) from None


ROUTES = [
    Router(
        path="/",
        route_handlers=[list_logs],
        # LogStoreError is an InfrastructureError: the app's table answers 503 + Retry-After
    )
]

DEPENDENCIES: dict[str, Resolver] = {"logs": log_store}
