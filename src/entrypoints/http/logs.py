"""``GET /logs``: the audit events from the log store, newest first, optionally filtered by
project and good. Events have the shape they travel in (``GoodEvent.to_json``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from core.catalog.events import rfc3339
from core.ports.audit import MAX_QUERY_LIMIT, LogStore
from entrypoints.http.errors import (
    BAD_REQUEST,
    CODE_VALIDATION,
    EXCEPTION_HANDLERS,
    UNAVAILABLE,
    envelope,
)

DEFAULT_LIMIT = 100


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


class LogsMeta(msgspec.Struct):
    limit: int
    count: int


class LogsOut(msgspec.Struct):
    meta: LogsMeta
    logs: list[LogEventOut]


@get(
    "/logs",
    summary="Audit events of goods, newest first",
    description="Filters combine; `limit` 1..1000 (default 100). Each event appears once.",
    responses={200: ResponseSpec(LogsOut, description="The events"), **BAD_REQUEST, **UNAVAILABLE},
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
) -> LogsOut:
    events = await logs.query(project_id=project_id, good_id=good_id, limit=limit)
    return LogsOut(
        meta=LogsMeta(limit=limit, count=len(events)),
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
            )
            for e in events
        ],
    )


_QUERY_NAMES = {"project_id": "projectId", "good_id": "id"}
_MISSING_PARAMETER = re.compile(r"parameter '([^']+)'")


def _client_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code != 400 or not isinstance(exc, ClientException):
        handler = EXCEPTION_HANDLERS[HTTPException]
        response: Response[dict[str, Any]] = handler(request, exc)
        return response
    details: dict[str, str] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or "query")
            details[_QUERY_NAMES.get(key, key)] = str(item.get("message", "invalid"))
    if not details:
        details["query"] = str(exc.detail)
    return envelope(400, CODE_VALIDATION, "errors.common.validation", details)


ROUTES = [
    Router(
        path="/",
        route_handlers=[list_logs],
        # LogStoreError is an InfrastructureError: the app's table answers 503 + Retry-After
        exception_handlers={HTTPException: _client_error},
    )
]

DEPENDENCIES = {"logs": "log_store"}
