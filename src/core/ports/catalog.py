"""The catalog's storage port: a unit of work over goods, projects and the event outbox.

Every method of the repositories runs inside the unit of work's one transaction; nothing is
visible to others until ``commit()``, and leaving the ``async with`` block without committing
rolls everything back. Every method may raise ``StorageError`` when the database fails, and
``StorageConflict`` (a ``StorageError``) when it aborted the transaction to break a conflict
with a concurrent one; the whole unit of work may then be run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, Self

from core.catalog.events import GoodEvent
from core.catalog.models import Good, GoodsPage, Project


class GoodsRepository(Protocol):
    async def add(self, *, project_id: int, name: str, description: str) -> Good | None:
        """Insert a good, ``removed`` false, with the next priority: one more than the highest
        priority handed out so far (1 for the first) — by ``add``s committed, in flight or
        rolled back (a rolled-back ``add`` leaves its number unused), and by reprioritizes.
        Never waits for another ``add``; waits for a reprioritize in flight. Concurrent
        ``add``s and reprioritizes never produce equal priorities. ``None`` (and nothing
        inserted) if there is no project ``project_id``."""
        ...

    async def get_for_update(self, good_id: int, project_id: int) -> Good | None:
        """The good ``good_id`` of project ``project_id``, locked until the transaction ends
        (another transaction's ``get_for_update`` of it waits); ``None`` if there is no such
        good in that project. Removed goods are returned too (with ``removed`` true)."""
        ...

    async def save(self, good: Good) -> Good:
        """Write ``name``, ``description`` and ``removed`` of a good previously returned by
        ``get_for_update`` in this unit of work; return it as stored."""
        ...

    async def lock_for_reprioritize(
        self, good_id: int, project_id: int, new_priority: int
    ) -> Good | None:
        """Take every lock a reprioritize of this good to ``new_priority`` needs, until the
        transaction ends: the priorities exclusively (no other ``add`` or reprioritize runs
        meanwhile), then the good and every good whose priority is ``>= new_priority``,
        in one step. Returns the good as locked (removed ones too), ``None`` if there is no
        such good in that project. Call it before any other lock of the unit of work."""
        ...

    async def reprioritize(self, good_id: int, project_id: int, new_priority: int) -> list[Good]:
        """Give the good ``new_priority`` and move every other good whose priority is
        ``>= new_priority`` up by one. If the good already has ``new_priority`` nothing
        changes. Returns every good whose priority changed, as stored after the change,
        ordered by priority. Requires ``lock_for_reprioritize`` with the same arguments
        earlier in this unit of work."""
        ...

    async def page(self, *, limit: int, offset: int) -> GoodsPage:
        """Goods ``offset .. offset+limit-1`` (1-based positions) ordered by priority, then id,
        removed ones included, with the counts of all and of removed goods."""
        ...


class ProjectsRepository(Protocol):
    async def get(self, project_id: int) -> Project | None:
        """The project, or ``None`` if there is none with that id."""
        ...

    async def add(self, *, name: str) -> Project:
        """Create a project with the next id."""
        ...

    async def list(self) -> list[Project]:
        """Every project, ordered by id."""
        ...


class Outbox(Protocol):
    async def add(self, events: Sequence[GoodEvent]) -> None:
        """Record ``events`` for publication; they become visible to the relay (and it is
        woken) only when the unit of work commits, and vanish if it rolls back. Adding an
        event whose ``event_id`` is already recorded raises ``StorageError``. Each record
        keeps the current trace context (``core.tracing.traceparent()``), if any."""
        ...


class CatalogUnitOfWork(AbstractAsyncContextManager["CatalogUnitOfWork", None], Protocol):
    """Leaving the ``async with`` block (``__aexit__``) rolls back unless ``commit()`` was
    called, and releases the connection."""

    goods: GoodsRepository
    projects: ProjectsRepository
    outbox: Outbox

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def commit(self) -> None:
        """Make every change of this unit of work durable and visible, atomically."""
        ...


class CatalogStore(Protocol):
    async def ping(self) -> None:
        """Return if the store answers (one trivial round trip), else raise ``StorageError``."""
        ...

    def unit_of_work(self) -> CatalogUnitOfWork:
        """A fresh unit of work; enter it with ``async with``. One per use-case call."""
        ...
