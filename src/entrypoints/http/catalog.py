"""Catalog routes, both dialects: ``/good...`` with ``projectId`` and ``/item...`` with
``campaignId``, served by the same handlers. Handlers decode, call ``CatalogService``, encode.

Bodies are decoded by ``entrypoints.http.decoding`` (``JsonBody``): strictly, every problem a
400 in the error envelope with ``details`` naming each field as the client spells it. The
project of a route (``projectId`` / ``campaignId``) and the good it addresses are Litestar
dependencies (``chosen_project``, ``addressed_good``), declared once for every route.
"""

from __future__ import annotations

from typing import Annotated, Any

import attrs
import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.types import ASGIApp

from core.catalog.rules import (
    DESCRIPTION_MAX,
    DESCRIPTION_PATTERN,
    LIMIT_MAX,
    NAME_MAX,
    NAME_PATTERN,
    PRIORITY_MAX,
)
from core.catalog.service import CatalogService
from core.errors import ValidationError
from entrypoints.catalog_wire import (
    GoodOut,
    GoodsListOut,
    PrioritiesOut,
    PriorityOut,
    ProjectOut,
    ProjectsOut,
    RemovedOut,
    good_out,
    project_out,
)
from entrypoints.http.decoding import JsonBody
from entrypoints.http.dependencies import Resolver, catalog_service
from entrypoints.http.errors import BAD_REQUEST, MUTATION, UNAVAILABLE, error
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


# A handler's dependencies form a chain (catalog -> project -> good), never two at one level:
# Litestar resolves the dependencies of one level concurrently, in a task group per request,
# and that cost more CPU than a create's own work in the HTTP process (bench/benchmarks.md).


@attrs.frozen
class InProject:
    """The catalog and the project a request addresses (``projectId`` or ``campaignId``)."""

    catalog: CatalogService
    project_id: int


@attrs.frozen
class GoodRef:
    """The good a request addresses: ``id`` and the project, in either dialect, and the
    catalog it is in."""

    catalog: CatalogService
    good_id: int
    project_id: int


def chosen_project(
    request: Request[Any, Any, Any],
    catalog: NamedDependency[CatalogService],
    project_id: ProjectIdQuery = None,
    campaign_id: CampaignIdQuery = None,
) -> InProject:
    """The project of a catalog route, named ``projectId`` or ``campaignId`` (either dialect's
    name on either path; both at once must agree)."""
    if project_id is not None and campaign_id is not None and project_id != campaign_id:
        # Both dialects' names at once: which project was meant is a guess we do not make.
        raise ValidationError(
            details={
                "projectId": "disagrees with campaignId",
                "campaignId": "disagrees with projectId",
            }
        )
    chosen = project_id if project_id is not None else campaign_id
    if chosen is None:
        field = "campaignId" if request.url.path.startswith("/item") else "projectId"
        raise ValidationError(details={field: "is required"})
    return InProject(catalog=catalog, project_id=chosen)


def addressed_good(good_id: GoodIdQuery, project: NamedDependency[InProject]) -> GoodRef:
    """The good of an update, remove or reprioritize: ``id`` in ``project``."""
    return GoodRef(catalog=project.catalog, good_id=good_id, project_id=project.project_id)


# --- handlers --------------------------------------------------------------------------------

_BAD = {**BAD_REQUEST, **UNAVAILABLE}
_WRITE = {**_BAD, **MUTATION}
_MISSING = {**_WRITE, 404: error("No such good in that project, or removed")}


@post(
    ["/good/create", "/item/create"],
    status_code=200,
    summary="Create a good at the end of the priority order",
    responses={**_WRITE, 404: error("No such project")},
    dto=JsonBody[GoodBody],
)
async def create_good(data: JSONBody[GoodBody], project: NamedDependency[InProject]) -> GoodOut:
    good = await project.catalog.create_good(
        project_id=project.project_id,
        name=data.name,
        description="" if data.description is msgspec.UNSET else data.description,
    )
    return good_out(good)


@patch(
    ["/good/update", "/item/update"],
    summary="Rename a good and optionally replace its description",
    responses=_MISSING,
    dto=JsonBody[GoodBody],
)
async def update_good(data: JSONBody[GoodBody], good: NamedDependency[GoodRef]) -> GoodOut:
    updated = await good.catalog.update_good(
        good_id=good.good_id,
        project_id=good.project_id,
        name=data.name,
        description=None if data.description is msgspec.UNSET else data.description,
    )
    return good_out(updated)


@delete(
    ["/good/remove", "/item/remove"],
    status_code=200,
    summary="Soft-remove a good",
    responses=_MISSING,
)
async def remove_good(good: NamedDependency[GoodRef]) -> RemovedOut:
    removed = await good.catalog.remove_good(good_id=good.good_id, project_id=good.project_id)
    return RemovedOut(id=removed.id, campaign_id=removed.project_id, removed=True)


@patch(
    ["/good/reprioritiize", "/good/reprioritize", "/item/reprioritize"],
    summary="Move a good to a new priority; the goods at or after it move up by one",
    description="Returns every good whose priority changed, the target included.",
    responses=_MISSING,
    dto=JsonBody[ReprioritizeBody],
)
async def reprioritize_good(
    data: JSONBody[ReprioritizeBody], good: NamedDependency[GoodRef]
) -> PrioritiesOut:
    changes = await good.catalog.reprioritize_good(
        good_id=good.good_id,
        project_id=good.project_id,
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


@post(
    "/project/create",
    status_code=200,
    summary="Create a project",
    responses=_WRITE,
    dto=JsonBody[ProjectBody],
)
async def create_project(
    catalog: NamedDependency[CatalogService], data: JSONBody[ProjectBody]
) -> ProjectOut:
    return project_out(await catalog.create_project(name=data.name))


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
        # a body's DTO (``dto=JsonBody[...]``) only decodes: every response is a Struct as it is
        return_dto=None,
        dependencies={
            "project": Provide(chosen_project, sync_to_thread=False),
            "good": Provide(addressed_good, sync_to_thread=False),
        },
    )
]

DEPENDENCIES: dict[str, Resolver] = {"catalog": catalog_service}
