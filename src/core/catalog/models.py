"""Catalog value objects: projects and the goods in them."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class Project:
    id: int
    name: str
    created_at: datetime


@attrs.frozen(kw_only=True)
class GoodState:
    """What a good is at one moment: a ``Good``, and the audit event of each change to it
    (``core.catalog.events.GoodEvent``) as it was right after the change."""

    id: int
    project_id: int
    name: str
    description: str
    priority: int
    removed: bool


@attrs.frozen(kw_only=True)
class Good(GoodState):
    """A good of a project. ``(id, project_id)`` identifies it; ``id`` alone is unique too.
    ``priority`` is unique across every good of every project, removed ones included."""

    created_at: datetime


@attrs.frozen(kw_only=True)
class PriorityChange:
    id: int
    project_id: int
    priority: int


@attrs.frozen(kw_only=True)
class GoodsPage:
    """One page of the goods list. ``total`` counts every good, ``removed`` the soft-deleted
    ones; ``goods`` is ordered by priority, then id."""

    total: int
    removed: int
    limit: int
    offset: int
    goods: tuple[Good, ...]
