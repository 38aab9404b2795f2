"""Hypothesis stateful agreement with interleaving: each step runs two random catalog writes at
once on two PostgreSQL connections, and the result must be what the in-memory store (the
reference model, which runs units of work one at a time) gives for one of the two serial
orders of the same writes: both writes' answers and the whole list afterwards.

The interleaving is either free (both started at once) or held: the first write runs up to
a point — just after it took its first lock, or just before its commit — and waits there,
holding its locks and its uncommitted writes, until the second has finished or waits for a
lock. An update held after its row lock while a reprioritize shifts up to that row is the
schedule that deadlocked before the locking protocol.

Goods and projects are named uniquely and compared by name: which of two concurrent creates
draws the lower id or priority is the server's choice, and equal to one serial order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from adapters.lru_cache import LruCache
from adapters.memory.catalog import MemoryCatalogStore
from adapters.postgres.catalog import PRIORITY_SEQUENCE, PgCatalogStore
from core.catalog.models import Good, GoodsPage, PriorityChange, Project
from core.catalog.service import CatalogService, Removed
from core.errors import DomainError
from core.ports.catalog import CatalogStore
from core.ports.clock import Uuid4Generator
from tests.integration.stateful_support import OwnLoop, reset_catalog
from tests.support import ON_SERVERS, eventually

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MISSING = 10**6  # an id no good or project has


class Clock:
    def now(self) -> datetime:
        return EPOCH


@attrs.define
class Side:
    """One store and what its ids are, by the names the test gave."""

    store: CatalogStore
    goods: dict[str, int] = attrs.field(factory=dict)
    projects: dict[str, int] = attrs.field(factory=dict)
    service: CatalogService = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.service = CatalogService(
            store=self.store,
            cache=LruCache(),
            clock=Clock(),
            ids=Uuid4Generator(),
            encode_page=lambda page: b"",
        )

    def names(self) -> tuple[dict[int, str], dict[int, str]]:
        return (
            {i: n for n, i in self.goods.items()},
            {i: n for n, i in self.projects.items()},
        )


Gate = Callable[[], Coroutine[Any, Any, None]]
LOCKING = ("add", "get_for_update", "lock_for_reprioritize")


class HeldStore:
    """A store whose units of work wait for ``gate()`` once: right after their first locking
    call (``at="lock"``) or before their commit (``at="commit"``)."""

    def __init__(self, inner: CatalogStore, gate: Gate, at: str) -> None:
        self.inner = inner
        self.gate = gate
        self.at = at

    def unit_of_work(self) -> Any:
        uow = self.inner.unit_of_work()
        if self.at == "commit":
            commit = uow.commit

            async def held_commit() -> None:
                await self.gate()
                await commit()

            uow.commit = held_commit  # type: ignore[method-assign]
            return uow
        held = False
        for name in LOCKING:
            method = getattr(uow.goods, name)

            async def locked(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                nonlocal held
                result = await _method(*args, **kwargs)
                if not held:
                    held = True
                    await self.gate()
                return result

            setattr(uow.goods, name, locked)
        return uow


def _fork(model: Side) -> Side:
    """A copy of the model store, to try one serial order on."""
    source = model.store
    assert isinstance(source, MemoryCatalogStore)
    store = MemoryCatalogStore(clock=Clock())
    store._state = source._state.copy()
    store.last_priority = source.last_priority
    return Side(store=store, goods=dict(model.goods), projects=dict(model.projects))


# An operation: a kind and its arguments, where goods and projects are named (resolved to
# each store's own ids when it runs).
Op = tuple[Any, ...]


async def _run(side: Side, op: Op) -> Any:
    kind = op[0]
    service = side.service
    try:
        if kind == "create":
            _, project, name = op
            good = await service.create_good(
                project_id=side.projects.get(project, MISSING), name=name, description=name
            )
            side.goods[name] = good.id
            return good
        if kind == "abandon":  # a create whose transaction rolls back: a gap
            _, project = op
            async with side.store.unit_of_work() as uow:
                good = await uow.goods.add(
                    project_id=side.projects.get(project, MISSING), name="x", description=""
                )
            return None if good is None else "abandoned"
        if kind == "project":
            project = await service.create_project(name=op[1])
            side.projects[op[1]] = project.id
            return project
        good_id = side.goods.get(op[1], MISSING)
        project_id = side.projects.get(op[2], MISSING)
        if kind == "update":
            return await service.update_good(
                good_id=good_id, project_id=project_id, name=op[3], description=op[4]
            )
        if kind == "remove":
            return await service.remove_good(good_id=good_id, project_id=project_id)
        if kind == "reprioritize":
            return await service.reprioritize_good(
                good_id=good_id, project_id=project_id, new_priority=op[3]
            )
    except DomainError as exc:
        return exc
    raise AssertionError(f"unknown operation {op}")


def _outcome(side: Side, result: Any) -> Any:
    """A result with ids replaced by the names the test gave (and no creation times)."""
    goods, projects = side.names()
    if isinstance(result, DomainError):
        return (type(result).__name__, result.details)
    if isinstance(result, Good):
        return (
            goods.get(result.id),
            projects.get(result.project_id),
            result.name,
            result.description,
            result.priority,
            result.removed,
        )
    if isinstance(result, Removed):
        return ("removed", goods.get(result.id), projects.get(result.project_id))
    if isinstance(result, Project):
        return ("project", projects.get(result.id), result.name)
    if isinstance(result, GoodsPage):
        return (result.total, result.removed, [_outcome(side, g) for g in result.goods])
    if isinstance(result, list):
        return [
            (goods.get(c.id), projects.get(c.project_id), c.priority)
            for c in result
            if isinstance(c, PriorityChange)
        ]
    return result


async def _page(side: Side) -> Any:
    return _outcome(side, await side.service.page(limit=1000, offset=1))


def test_two_connections_interleaved_agree_with_one_serial_order(pg_url: str) -> None:
    # Two connections: each of a step's two writes holds one from start to end.
    own = OwnLoop.open(pg_url, min_size=2, max_size=2)
    run, pool = own.run, own.pool
    observer = psycopg.connect(pg_url, autocommit=True)

    async def _waiting_on_a_lock() -> bool:
        row = observer.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return bool(row and row[0])

    def _priority_counter() -> int:
        """The highest priority handed out, as ``MemoryCatalogStore.last_priority`` counts it.
        Part of what a step is compared on: two orders of the same writes can leave the same
        answers and list but different counters (a rolled-back create next to a reprioritize
        past the top), and only the counter tells which one the server ran; the next create
        shows the difference."""
        row = observer.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {PRIORITY_SEQUENCE}"
        ).fetchone()
        assert row is not None
        return int(row[0])

    names = st.sampled_from(["a", "b", " c "])
    # Mostly a good or project that exists (an index into those made so far), now and then
    # one that does not; an edit names the good's own project unless ``elsewhere``.
    good_refs = st.integers(min_value=0, max_value=20)
    project_refs = st.integers(min_value=0, max_value=5)
    elsewhere = st.integers(min_value=0, max_value=9).map(lambda n: n == 0)

    class Interleaving(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset_catalog(pg_url)
            self.real = Side(store=PgCatalogStore(pool=pool), projects={"p1": 1})
            self.model = Side(store=MemoryCatalogStore(clock=Clock()), projects={"p1": 1})
            self.made = 0
            self.home: dict[str, str] = {}  # good name -> its project's name
            for _ in range(4):  # a few goods to start from, made one at a time
                op = ("create", "p1", self._fresh("g"))
                self.home[op[2]] = "p1"
                run(_run(self.real, op))
                run(_run(self.model, op))

        def _good(self, ref: int) -> str:
            made = sorted(self.model.goods)
            return made[ref % len(made)] if made and ref < 18 else "missing"

        def _project(self, ref: int) -> str:
            made = sorted(self.model.projects)
            return made[ref % len(made)] if ref < 5 else "nowhere"

        def _fresh(self, prefix: str) -> str:
            self.made += 1
            return f"{prefix}{self.made}"

        ops = st.one_of(
            st.tuples(st.just("create"), project_refs),
            st.tuples(st.just("abandon"), project_refs),
            st.tuples(st.just("project")),
            st.tuples(
                st.just("update"),
                good_refs,
                elsewhere,
                project_refs,
                names,
                st.none() | st.just("d"),
            ),
            st.tuples(st.just("remove"), good_refs, elsewhere, project_refs),
            st.tuples(
                st.just("reprioritize"),
                good_refs,
                elsewhere,
                project_refs,
                st.integers(min_value=1, max_value=10),
            ),
        )

        def _resolve(self, raw: tuple[Any, ...]) -> Op:
            kind = raw[0]
            if kind == "create":
                op = ("create", self._project(raw[1]), self._fresh("g"))
                self.home[op[2]] = op[1]
                return op
            if kind == "project":
                return ("project", self._fresh("q"))
            if kind == "abandon":
                return ("abandon", self._project(raw[1]))
            good = self._good(raw[1])
            project = self._project(raw[3]) if raw[2] else self.home.get(good, "nowhere")
            return (kind, good, project, *raw[4:])

        async def free(self, a: Op, b: Op) -> list[Any]:
            return list(await asyncio.gather(_run(self.real, a), _run(self.real, b)))

        async def held(self, a: Op, b: Op, at: str) -> list[Any]:
            """``a`` up to ``at`` (its first lock, or its commit); then ``b`` until it is done
            or waits for a lock; then ``a`` goes on."""
            at_commit = asyncio.Event()
            second: asyncio.Task[Any] | None = None

            async def gate() -> None:
                at_commit.set()

                async def settled() -> bool:
                    return second is not None and (second.done() or await _waiting_on_a_lock())

                await eventually(
                    settled, within=10, what=f"{b} finishing or waiting", interval=0.002
                )

            holder = Side(
                store=HeldStore(self.real.store, gate, at),
                goods=self.real.goods,
                projects=self.real.projects,
            )
            first = asyncio.create_task(_run(holder, a))
            reached = asyncio.create_task(at_commit.wait())
            await asyncio.wait({first, reached}, return_when=asyncio.FIRST_COMPLETED)
            reached.cancel()
            second = asyncio.create_task(_run(self.real, b))
            return [await first, await second]

        @rule(first=ops, second=ops, hold=st.sampled_from(["lock", "commit", "free"]))
        def two_at_once(self, first: tuple[Any, ...], second: tuple[Any, ...], hold: str) -> None:
            self._check(self._resolve(first), self._resolve(second), hold)

        @rule(
            edit=st.sampled_from(["update", "update", "update", "remove"]),
            edited=good_refs,
            moved=good_refs,
            ahead=st.integers(min_value=0, max_value=3),
            hold=st.sampled_from(["lock", "lock", "commit", "free"]),
        )
        def edit_while_reprioritizing(
            self, edit: str, edited: int, moved: int, ahead: int, hold: str
        ) -> None:
            """The pair most likely to conflict: an edit of one good while another moves to
            ``ahead`` places before it, shifting the edited one and those just before it."""
            x, target = self._good(edited), self._good(moved)
            store = self.model.store
            assert isinstance(store, MemoryCatalogStore)
            current = store._state.goods.get(self.model.goods.get(x, MISSING))
            priority = max(1, (current.priority if current else 1) - ahead)
            a: Op = (edit, x, self.home.get(x, "nowhere"))
            if edit == "update":
                a = (*a, f"{x}!", None)
            b: Op = ("reprioritize", target, self.home.get(target, "nowhere"), priority)
            self._check(a, b, hold)

        def _check(self, a: Op, b: Op, hold: str) -> None:
            real_results = run(self.free(a, b) if hold == "free" else self.held(a, b, hold))
            real = (
                [_outcome(self.real, r) for r in real_results],
                run(_page(self.real)),
                _priority_counter(),
            )
            tried = []
            for order in ((0, 1), (1, 0)):
                fork = _fork(self.model)
                results: dict[int, Any] = {}
                for index in order:
                    results[index] = run(_run(fork, (a, b)[index]))
                store = fork.store
                assert isinstance(store, MemoryCatalogStore)
                outcome = (
                    [_outcome(fork, results[0]), _outcome(fork, results[1])],
                    run(_page(fork)),
                    store.last_priority,
                )
                if outcome == real:
                    self.model = fork
                    return
                tried.append(outcome)
            raise AssertionError(f"{a} and {b} at once gave {real}, no serial order does: {tried}")

        @invariant()
        def priorities_are_unique_and_counted(self) -> None:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT priority) FROM goods"
                ).fetchone()
            assert row is not None
            assert row[0] == row[1]

    try:
        run_state_machine_as_test(Interleaving, settings=settings(ON_SERVERS, max_examples=40))
    finally:
        observer.close()
        own.close()
