"""The in-memory catalog store: a real adapter (demos, ``catalog_store=memory``) and the
reference model the Postgres adapter is checked against.

Units of work run one at a time (an ``asyncio.Lock`` held from enter to exit), each on a copy
of the state that replaces the shared state on commit: serialisable, trivially. The priority
counter is kept outside that state, like PostgreSQL's sequence: a rolled-back create leaves
its number unused, so both stores hand out the same priorities."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Self

import attrs

from core import tracing
from core.catalog.events import GoodEvent
from core.catalog.models import Good, GoodsPage, Project
from core.errors import StorageError
from core.ports.audit import PendingEvent
from core.ports.clock import Clock, SystemClock

SEEDED_PROJECT_NAME = "Первая запись"


@attrs.frozen(kw_only=True)
class OutboxRecord(PendingEvent):
    """An outbox row, as the Postgres ``outbox`` table holds it: the event for the relay, and
    when it was recorded and sent."""

    created_at: datetime
    sent_at: datetime | None = None


@attrs.define(kw_only=True)
class _State:
    projects: dict[int, Project]
    goods: dict[int, Good]
    outbox: list[OutboxRecord]
    next_project: int
    next_good: int

    def copy(self) -> _State:
        return _State(
            projects=dict(self.projects),
            goods=dict(self.goods),
            outbox=list(self.outbox),
            next_project=self.next_project,
            next_good=self.next_good,
        )


class MemoryCatalogStore:
    """Projects, goods and the outbox in process memory, seeded like the first migration."""

    def __init__(self, *, clock: Clock | None = None, topic: str = "goods.events") -> None:
        self._clock = clock or SystemClock()
        self._topic = topic
        self._lock = asyncio.Lock()
        seeded = Project(id=1, name=SEEDED_PROJECT_NAME, created_at=self._clock.now())
        self._state = _State(projects={1: seeded}, goods={}, outbox=[], next_project=2, next_good=1)
        self.last_priority = 0
        """The highest priority handed out (PostgreSQL: ``goods_priority_seq``); never rolled
        back."""
        self.outbox_signal = asyncio.Event()
        """Set whenever a commit added outbox records; a relay clears it before reading."""

    async def ping(self) -> None:
        return None  # process memory always answers

    def unit_of_work(self) -> MemoryCatalogUnitOfWork:
        return MemoryCatalogUnitOfWork(self)

    def outbox_records(self, *, pending_only: bool = False) -> list[OutboxRecord]:
        """The committed outbox records in insertion order (only unsent ones if asked)."""
        return [r for r in self._state.outbox if not (pending_only and r.sent_at is not None)]

    def mark_outbox_sent(self, ids: Sequence[int]) -> None:
        """Mark outbox records sent (after the broker acknowledged them)."""
        wanted, now = set(ids), self._clock.now()
        self._state.outbox = [
            attrs.evolve(r, sent_at=now) if r.id in wanted and r.sent_at is None else r
            for r in self._state.outbox
        ]

    def prune_outbox_sent(self, older_than: float, limit: int) -> int:
        """Drop up to ``limit`` records sent more than ``older_than`` seconds ago."""
        cutoff = self._clock.now() - timedelta(seconds=older_than)
        old = [r.id for r in self._state.outbox if r.sent_at is not None and r.sent_at < cutoff]
        gone = set(old[:limit])
        self._state.outbox = [r for r in self._state.outbox if r.id not in gone]
        return len(gone)


class MemoryCatalogUnitOfWork:
    def __init__(self, store: MemoryCatalogStore) -> None:
        self._store = store
        self._state: _State | None = None
        self._committed = False
        self.goods = _Goods(self)
        self.projects = _Projects(self)
        self.outbox = _Outbox(self)

    @property
    def state(self) -> _State:
        if self._state is None:
            raise StorageError("unit of work used outside its `async with` block")
        return self._state

    @property
    def now(self) -> datetime:
        return self._store._clock.now()

    async def __aenter__(self) -> Self:
        await self._store._lock.acquire()
        self._state = self._store._state.copy()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._state = None
        self._store._lock.release()

    async def commit(self) -> None:
        state = self.state
        added = len(state.outbox) > len(self._store._state.outbox)
        self._store._state = state
        self._state = state.copy()
        if added:
            self._store.outbox_signal.set()


class _Goods:
    def __init__(self, uow: MemoryCatalogUnitOfWork) -> None:
        self._uow = uow

    async def add(self, *, project_id: int, name: str, description: str) -> Good | None:
        state = self._uow.state
        if project_id not in state.projects:
            return None
        store = self._uow._store
        store.last_priority += 1
        priority = store.last_priority
        good = Good(
            id=state.next_good,
            project_id=project_id,
            name=name,
            description=description,
            priority=priority,
            removed=False,
            created_at=self._uow.now,
        )
        state.goods[good.id] = good
        state.next_good += 1
        return good

    async def get_for_update(self, good_id: int, project_id: int) -> Good | None:
        good = self._uow.state.goods.get(good_id)
        return good if good is not None and good.project_id == project_id else None

    async def save(self, good: Good) -> Good:
        goods = self._uow.state.goods
        current = goods.get(good.id)
        if current is None or current.project_id != good.project_id:
            raise StorageError(f"good {good.id} of project {good.project_id} does not exist")
        stored = attrs.evolve(
            current, name=good.name, description=good.description, removed=good.removed
        )
        goods[good.id] = stored
        return stored

    async def lock_for_reprioritize(
        self, good_id: int, project_id: int, new_priority: int
    ) -> Good | None:
        return await self.get_for_update(good_id, project_id)  # units run one at a time

    async def reprioritize(self, good_id: int, project_id: int, new_priority: int) -> list[Good]:
        goods = self._uow.state.goods
        target = await self.get_for_update(good_id, project_id)
        if target is None:
            raise StorageError(f"good {good_id} of project {project_id} does not exist")
        if target.priority == new_priority:
            return []
        changed = [attrs.evolve(target, priority=new_priority)]
        changed += [
            attrs.evolve(g, priority=g.priority + 1)
            for g in goods.values()
            if g.id != good_id and g.priority >= new_priority
        ]
        for good in changed:
            goods[good.id] = good
        store = self._uow._store
        store.last_priority = max(store.last_priority, *(g.priority for g in changed))
        return sorted(changed, key=lambda g: (g.priority, g.id))

    async def page(self, *, limit: int, offset: int) -> GoodsPage:
        goods = sorted(self._uow.state.goods.values(), key=lambda g: (g.priority, g.id))
        return GoodsPage(
            total=len(goods),
            removed=sum(g.removed for g in goods),
            limit=limit,
            offset=offset,
            goods=tuple(goods[offset - 1 : offset - 1 + limit]),
        )


class _Projects:
    def __init__(self, uow: MemoryCatalogUnitOfWork) -> None:
        self._uow = uow

    async def get(self, project_id: int) -> Project | None:
        return self._uow.state.projects.get(project_id)

    async def add(self, *, name: str) -> Project:
        state = self._uow.state
        project = Project(id=state.next_project, name=name, created_at=self._uow.now)
        state.projects[project.id] = project
        state.next_project += 1
        return project

    async def list(self) -> list[Project]:
        return sorted(self._uow.state.projects.values(), key=lambda p: p.id)


class _Outbox:
    def __init__(self, uow: MemoryCatalogUnitOfWork) -> None:
        self._uow = uow

    async def add(self, events: Sequence[GoodEvent]) -> None:
        outbox = self._uow.state.outbox
        known = {r.event_id for r in outbox}
        next_id = (outbox[-1].id if outbox else 0) + 1
        traceparent = tracing.traceparent()
        for offset, event in enumerate(events):
            if event.event_id in known:
                raise StorageError(f"event {event.event_id} is already in the outbox")
            known.add(event.event_id)
            outbox.append(
                OutboxRecord(
                    id=next_id + offset,
                    event_id=event.event_id,
                    topic=self._uow._store._topic,
                    key=str(event.event_id),
                    payload=event.to_json(),
                    created_at=datetime.now(UTC),
                    traceparent=traceparent,
                )
            )
