"""Catalog routes, both dialects: ``/good...`` with ``projectId`` and ``/item...`` with
``campaignId``, served by the same handlers. Handlers decode, call ``CatalogService``, encode.

Bodies are decoded strictly (unknown fields are refused, naming them); every decoding problem
becomes a 400 in the error envelope with ``details`` naming the field as the client spells it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.types import ASGIApp
from litestar.utils.scope.state import ScopeState

from core.catalog.models import Good, GoodsPage, Project
from core.catalog.rules import (
    DESCRIPTION_MAX,
    DESCRIPTION_PATTERN,
    LIMIT_MAX,
    NAME_MAX,
    NAME_PATTERN,
    PRIORITY_MAX,
    clean_description,
    clean_name,
)
from core.catalog.service import CatalogService
from core.errors import ValidationError
from entrypoints.http.errors import (
    BAD_REQUEST,
    CODE_VALIDATION,
    EXCEPTION_HANDLERS,
    MUTATION,
    UNAVAILABLE,
    envelope,
    error,
)
from entrypoints.http.fastpath import json_response

# --- bodies ----------------------------------------------------------------------------------


Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="Trimmed; at least one visible character; no NUL or bidirectional control.",
    ),
]
Description = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX, pattern=DESCRIPTION_PATTERN)]


class GoodBody(msgspec.Struct, forbid_unknown_fields=True):
    """A good's editable fields. ``name`` is trimmed, 1..255 characters; ``description`` at
    most 10,000 (on update, omitted means unchanged)."""

    name: Name
    description: Description | msgspec.UnsetType = msgspec.UNSET


class ReprioritizeBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    new_priority: Annotated[int, msgspec.Meta(ge=1, le=PRIORITY_MAX)]


class ProjectBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


_Body = TypeVar("_Body", bound=msgspec.Struct)


# --- responses -------------------------------------------------------------------------------


class GoodOut(msgspec.Struct, rename="camel"):
    id: int
    project_id: int
    name: str
    description: str
    priority: int
    removed: bool
    created_at: datetime


class ListMeta(msgspec.Struct):
    total: int
    removed: int
    limit: int
    offset: int


class GoodsListOut(msgspec.Struct):
    meta: ListMeta
    goods: list[GoodOut]


class RemovedOut(msgspec.Struct, rename="camel"):
    id: int
    campaign_id: int
    removed: bool


class PriorityOut(msgspec.Struct):
    id: int
    priority: int


class PrioritiesOut(msgspec.Struct):
    priorities: list[PriorityOut]


class ProjectOut(msgspec.Struct, rename="camel"):
    id: int
    name: str
    created_at: datetime


class ProjectsOut(msgspec.Struct):
    projects: list[ProjectOut]


def good_out(good: Good) -> GoodOut:
    return GoodOut(
        id=good.id,
        project_id=good.project_id,
        name=good.name,
        description=good.description,
        priority=good.priority,
        removed=good.removed,
        created_at=good.created_at.astimezone(UTC),
    )


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(
        id=project.id, name=project.name, created_at=project.created_at.astimezone(UTC)
    )


def encode_page(page: GoodsPage) -> bytes:
    """The ``GET /goods/list`` response body: what the list cache stores and serves."""
    return msgspec.json.encode(
        GoodsListOut(
            meta=ListMeta(
                total=page.total, removed=page.removed, limit=page.limit, offset=page.offset
            ),
            goods=[good_out(g) for g in page.goods],
        )
    )


# --- query parameters ------------------------------------------------------------------------

# Ids and offsets of any size are integers: out of the store's range, nothing has that id
# (404) and no page starts there (an empty page).
ProjectIdQuery = Annotated[
    int | None, QueryParameter(name="projectId", description="The project (`/good...` routes).")
]
CampaignIdQuery = Annotated[
    int | None, QueryParameter(name="campaignId", description="The project (`/item...` routes).")
]
GoodIdQuery = Annotated[int, QueryParameter(name="id", description="The good.")]

_QUERY_NAMES = {"project_id": "projectId", "campaign_id": "campaignId", "good_id": "id"}


_AT_PATH = re.compile(r"^(.*) - at `\$\.([^`.\[]+)")


_MISSING_FIELD = re.compile(r"Object missing required field `([^`]*)`")


async def _strict(request: Request[Any, Any, Any], body_type: type[_Body]) -> _Body:
    """The body decoded again without type coercion: Litestar's own decoding turns the
    string ``"2"`` into the integer ``2``; the contract says wrong types are a 400. A number
    with a zero fraction (``2.0``) is an integer, as JSON Schema's ``integer`` says; ``2.5``
    is not."""
    body = await request.body()
    try:
        return msgspec.json.decode(body, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        document = msgspec.json.decode(body)  # valid JSON: Litestar decoded it already
        if isinstance(document, dict) and any(_integral(v) for v in document.values()):
            whole = {k: int(v) if _integral(v) else v for k, v in document.items()}
            with contextlib.suppress(msgspec.ValidationError):
                return msgspec.convert(whole, type=body_type, strict=True)
        missing, found = _MISSING_FIELD.search(str(exc)), _AT_PATH.match(str(exc))
        if missing:
            field, reason = missing.group(1), "is required"
        elif found:
            field, reason = found.group(2), found.group(1)
        else:
            field, reason = "body", str(exc)
        raise ValidationError(details={field: reason}) from exc


def _integral(value: object) -> bool:
    return isinstance(value, float) and value.is_integer()


def _unknown_fields(body: bytes, body_type: type[msgspec.Struct]) -> list[str]:
    """Every top-level key of the JSON object ``body`` that ``body_type`` does not know
    (msgspec stops at the first; the contract names them all)."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    if not isinstance(document, dict):
        return []
    known = {f.encode_name for f in msgspec.structs.fields(body_type)}
    return [str(key) for key in document if key not in known]


def _project(request: Request[Any, Any, Any], project_id: int | None, campaign: int | None) -> int:
    if project_id is not None and campaign is not None and project_id != campaign:
        # Both dialects' names at once: which project was meant is a guess we do not make.
        raise ValidationError(
            details={
                "projectId": "disagrees with campaignId",
                "campaignId": "disagrees with projectId",
            }
        )
    chosen = project_id if project_id is not None else campaign
    if chosen is None:
        field = "campaignId" if request.url.path.startswith("/item") else "projectId"
        raise ValidationError(details={field: "is required"})
    return chosen


# --- handlers --------------------------------------------------------------------------------

_BAD = {**BAD_REQUEST, **UNAVAILABLE}
_WRITE = {**_BAD, **MUTATION}
_MISSING = {**_WRITE, 404: error("No such good in that project, or removed")}


@post(
    ["/good/create", "/item/create"],
    status_code=200,
    summary="Create a good at the end of the priority order",
    responses={**_WRITE, 404: error("No such project")},
)
async def create_good(
    request: Request[Any, Any, Any],
    catalog: NamedDependency[CatalogService],
    data: JSONBody[GoodBody],
    project_id: ProjectIdQuery = None,
    campaign_id: CampaignIdQuery = None,
) -> GoodOut:
    good = await catalog.create_good(
        project_id=_project(request, project_id, campaign_id),
        name=data.name,
        description="" if data.description is msgspec.UNSET else data.description,
    )
    return good_out(good)


@patch(
    ["/good/update", "/item/update"],
    summary="Rename a good and optionally replace its description",
    responses=_MISSING,
)
async def update_good(
    request: Request[Any, Any, Any],
    catalog: NamedDependency[CatalogService],
    data: JSONBody[GoodBody],
    good_id: GoodIdQuery,
    project_id: ProjectIdQuery = None,
    campaign_id: CampaignIdQuery = None,
) -> GoodOut:
    good = await catalog.update_good(
        good_id=good_id,
        project_id=_project(request, project_id, campaign_id),
        name=data.name,
        description=None if data.description is msgspec.UNSET else data.description,
    )
    return good_out(good)


@delete(
    ["/good/remove", "/item/remove"],
    status_code=200,
    summary="Soft-remove a good",
    responses=_MISSING,
)
async def remove_good(
    request: Request[Any, Any, Any],
    catalog: NamedDependency[CatalogService],
    good_id: GoodIdQuery,
    project_id: ProjectIdQuery = None,
    campaign_id: CampaignIdQuery = None,
) -> RemovedOut:
    removed = await catalog.remove_good(
        good_id=good_id, project_id=_project(request, project_id, campaign_id)
    )
    return RemovedOut(id=removed.id, campaign_id=removed.project_id, removed=True)


@patch(
    ["/good/reprioritiize", "/good/reprioritize", "/item/reprioritize"],
    summary="Move a good to a new priority; the goods at or after it move up by one",
    description="Returns every good whose priority changed, the target included.",
    responses=_MISSING,
)
async def reprioritize_good(
    request: Request[Any, Any, Any],
    catalog: NamedDependency[CatalogService],
    data: JSONBody[ReprioritizeBody],
    good_id: GoodIdQuery,
    project_id: ProjectIdQuery = None,
    campaign_id: CampaignIdQuery = None,
) -> PrioritiesOut:
    data = await _strict(request, ReprioritizeBody)
    changes = await catalog.reprioritize_good(
        good_id=good_id,
        project_id=_project(request, project_id, campaign_id),
        new_priority=data.new_priority,
    )
    return PrioritiesOut(priorities=[PriorityOut(id=c.id, priority=c.priority) for c in changes])


@get(
    ["/goods/list", "/items/list"],
    summary="A page of goods ordered by priority, then id (cached for 60 s)",
    responses={200: ResponseSpec(GoodsListOut, description="The page"), **_BAD},
)
async def list_goods(
    catalog: NamedDependency[CatalogService],
    limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX, description="Page size.")] = 10,
    offset: Annotated[
        int, QueryParameter(ge=0, description="1-based position of the first good; 0 reads as 1.")
    ] = 1,
) -> ASGIApp:
    # The cached bytes as they are (a hot path: no Litestar ``Response`` to build).
    return json_response(await catalog.list_goods(limit=limit, offset=offset))


@get("/projects/list", summary="Every project, ordered by id", responses=UNAVAILABLE)
async def list_projects(catalog: NamedDependency[CatalogService]) -> ProjectsOut:
    return ProjectsOut(projects=[project_out(p) for p in await catalog.list_projects()])


@post("/project/create", status_code=200, summary="Create a project", responses=_WRITE)
async def create_project(
    catalog: NamedDependency[CatalogService], data: JSONBody[ProjectBody]
) -> ProjectOut:
    return project_out(await catalog.create_project(name=data.name))


# --- decoding errors -------------------------------------------------------------------------

_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")


def decoding_details(
    exc: ClientException, body: bytes | None = None, body_type: type[msgspec.Struct] | None = None
) -> dict[str, str]:
    """``details`` naming each offending field as the client spells it. With the request's
    ``body`` and its ``body_type``, every unknown field is named, not only the first."""
    details: dict[str, str] = {}
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message, key = str(item.get("message", "invalid")), str(item.get("key") or "body")
        unknown = _UNKNOWN_FIELD.search(message)
        missing = _MISSING_FIELD.search(message)
        if unknown:
            details[unknown.group(1)] = "unknown field"
            if body is not None and body_type is not None:
                details.update(dict.fromkeys(_unknown_fields(body, body_type), "unknown field"))
        elif missing and key == "data":
            details[missing.group(1)] = "is required"
        elif key in _RULES and ("matching regex" in message or "length >= 1" in message):
            details[key] = _rule_reason(key, body)
        elif key == "data":
            absent = isinstance(exc.__cause__, msgspec.ValidationError) and "`data`" in str(
                exc.__cause__
            )
            details["body"] = "a JSON object is required" if absent else message
        else:
            details[_QUERY_NAMES.get(key, key)] = message
    if not details:
        missing = _MISSING_PARAMETER.search(str(exc.detail))
        if missing:
            details[missing.group(1)] = "is required"
        else:
            details["body"] = f"malformed JSON: {exc.detail}"
    return details


_RULES: dict[str, Callable[[str], str]] = {"name": clean_name, "description": clean_description}


def _rule_reason(field: str, body: bytes | None) -> str:
    """The catalog rule's own reason for a value its OpenAPI ``pattern`` refused."""
    try:
        value = msgspec.json.decode(body or b"{}").get(field)
        _RULES[field](value)
    except ValidationError as exc:
        return exc.details.get(field, "invalid")
    except Exception:  # not an object, or not a string: the pattern's words are as good
        return "invalid"
    return "invalid"


def _client_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code != 400 or not isinstance(exc, ClientException):
        handler = EXCEPTION_HANDLERS[HTTPException]
        response: Response[dict[str, Any]] = handler(request, exc)
        return response
    body = ScopeState.from_scope(request.scope).body  # the bytes Litestar already read
    body_type = _BODY_TYPES.get(getattr(request.route_handler.fn, "__name__", ""))
    details = decoding_details(exc, body if isinstance(body, bytes) else None, body_type)
    return envelope(400, CODE_VALIDATION, "errors.common.validation", details)


_BODY_TYPES: dict[str, type[msgspec.Struct]] = {
    create_good.fn.__name__: GoodBody,
    update_good.fn.__name__: GoodBody,
    reprioritize_good.fn.__name__: ReprioritizeBody,
    create_project.fn.__name__: ProjectBody,
}

ROUTES = [
    Router(
        path="/",
        route_handlers=[
            create_good,
            update_good,
            remove_good,
            reprioritize_good,
            list_goods,
            list_projects,
            create_project,
        ],
        tags=["catalog"],
        exception_handlers={HTTPException: _client_error},
    )
]

DEPENDENCIES = {"catalog": "catalog_service"}
