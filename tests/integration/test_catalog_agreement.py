"""Hypothesis stateful agreement: the same random create/update/remove/reprioritize sequence
on the in-memory store (the reference model) and on Postgres gives the same results."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from adapters.lru_cache import LruCache
from adapters.memory.catalog import MemoryCatalogStore
from adapters.postgres.catalog import PgCatalogStore
from core.catalog.models import GoodsPage
from core.catalog.service import CatalogService
from core.errors import DomainError
from tests.integration.stateful_support import OwnLoop, reset_catalog
from tests.support import ON_SERVERS

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return EPOCH


class Ids:
    def new_id(self) -> uuid.UUID:
        return uuid.uuid4()


def _service(store: Any) -> CatalogService:
    return CatalogService(
        store=store, cache=LruCache(), clock=Clock(), ids=Ids(), encode_page=lambda p: b""
    )


def _outcome(result: Any) -> Any:
    """What must agree: results without creation times; errors by class and details."""
    if isinstance(result, DomainError):
        return (type(result).__name__, result.details)
    if isinstance(result, GoodsPage):
        return (result.total, result.removed, [_outcome(g) for g in result.goods])
    if isinstance(result, list):
        return [_outcome(r) for r in result]
    if hasattr(result, "created_at"):
        return {k: v for k, v in vars_of(result).items() if k != "created_at"}
    return result


def vars_of(obj: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(obj, recurse=False)


def test_memory_and_postgres_agree(pg_url: str) -> None:
    own = OwnLoop.open(pg_url, min_size=1, max_size=4)
    run, pool = own.run, own.pool

    class Agreement(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset_catalog(pg_url)
            self.model = _service(MemoryCatalogStore(clock=Clock()))
            self.real = _service(PgCatalogStore(pool=pool))
            self.created = 0

        def both(self, call: Callable[[CatalogService], Coroutine[Any, Any, Any]]) -> None:
            outcomes = []
            for service in (self.model, self.real):
                try:
                    outcomes.append(_outcome(run(call(service))))
                except DomainError as exc:
                    outcomes.append(_outcome(exc))
            assert outcomes[0] == outcomes[1]

        ids = st.integers(min_value=1, max_value=12)
        projects = st.integers(min_value=1, max_value=3)
        names = st.text(min_size=0, max_size=8)

        @rule(project=projects, name=names, description=st.text(max_size=5))
        def create(self, project: int, name: str, description: str) -> None:
            self.both(
                lambda s: s.create_good(project_id=project, name=name, description=description)
            )

        @rule(name=names)
        def create_project(self, name: str) -> None:
            self.both(lambda s: s.create_project(name=name))

        @rule(good=ids, project=projects, name=names, description=st.none() | st.text(max_size=5))
        def update(self, good: int, project: int, name: str, description: str | None) -> None:
            self.both(
                lambda s: s.update_good(
                    good_id=good, project_id=project, name=name, description=description
                )
            )

        @rule(good=ids, project=projects)
        def remove(self, good: int, project: int) -> None:
            self.both(lambda s: s.remove_good(good_id=good, project_id=project))

        @rule(good=ids, project=projects, priority=st.integers(min_value=0, max_value=15))
        def reprioritize(self, good: int, project: int, priority: int) -> None:
            self.both(
                lambda s: s.reprioritize_good(
                    good_id=good, project_id=project, new_priority=priority
                )
            )

        @invariant()
        def pages_agree(self) -> None:
            self.both(lambda s: s.page(limit=1000, offset=1))

        @invariant()
        def priorities_are_unique(self) -> None:
            page = run(self.real.page(limit=1000, offset=1))
            assert len({g.priority for g in page.goods}) == len(page.goods)

    try:
        run_state_machine_as_test(Agreement, settings=settings(ON_SERVERS, max_examples=25))
    finally:
        own.close()
