"""The catalog's JSON responses: what the catalog routes (``entrypoints.http.catalog``) return,
and ``encode_page``, the ``GET /goods/list`` body the list cache stores and serves (the
composition root hands it to ``CatalogService``). The Structs are the OpenAPI schema's too."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from core.catalog.models import Good, GoodsPage, Project


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
