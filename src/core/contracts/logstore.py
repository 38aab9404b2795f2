"""The log store contract, as a reusable suite. Provide a ``log_store`` fixture (a fresh, empty
store per test) and subclass ``LogStoreContract``. The agreement property drives the store and
the in-memory reference model (``reference`` fixture, supplied by the adapters' test module)
with the same random operations and asserts equal answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalog.events import GoodEvent
from core.ports.audit import LogQuery, LogStore

_BASE = datetime(2026, 1, 1, tzinfo=UTC)


def event(
    *,
    good_id: int = 1,
    project_id: int = 1,
    seconds: float = 0.0,
    type_: str = "update",
    name: str = "name",
    description: str = "",
    priority: int = 1,
    removed: bool = False,
    event_id: uuid.UUID | None = None,
) -> GoodEvent:
    return GoodEvent(
        event_id=event_id or uuid.uuid4(),
        type=type_,  # type: ignore[arg-type]
        id=good_id,
        project_id=project_id,
        name=name,
        description=description,
        priority=priority,
        removed=removed,
        event_time=_BASE + timedelta(seconds=seconds),
    )


_text = st.text(st.characters(codec="utf-8"), max_size=20)
_types = st.sampled_from(["create", "update", "remove", "reprioritize"])
_instants = st.integers(0, 50).map(lambda ms: _BASE + timedelta(microseconds=ms * 1001))

events_strategy = st.builds(
    GoodEvent,
    event_id=st.uuids(),
    type=_types,
    id=st.integers(1, 6),
    project_id=st.integers(1, 3),
    name=_text,
    description=_text,
    priority=st.integers(1, 10_000),
    removed=st.booleans(),
    event_time=_instants,
)

queries = st.builds(
    LogQuery,
    project_id=st.one_of(st.none(), st.integers(1, 3)),
    good_id=st.one_of(st.none(), st.integers(1, 6)),
    types=st.lists(_types, max_size=2),
    since=st.one_of(st.none(), _instants),
    limit=st.integers(1, 30),
)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(events_strategy, max_size=8), st.integers(0, 3)),
        st.tuples(st.just("query"), queries, st.booleans()),
    ),
    min_size=1,
    max_size=8,
)


class LogStoreContract:
    async def test_an_empty_store_answers_nothing(self, log_store: LogStore) -> None:
        await log_store.append([])
        assert await log_store.query() == []

    async def test_events_round_trip_newest_first(self, log_store: LogStore) -> None:
        sent = [
            event(seconds=1.000001, name="Первая", description="x" * 300, type_="create"),
            event(seconds=3, name="три", removed=True, type_="remove", priority=7),
            event(seconds=2, name='quote " and \\ slash', good_id=2),
        ]
        await log_store.append(sent)
        got = await log_store.query()
        assert got == sorted(sent, key=lambda e: e.event_time, reverse=True)

    async def test_appending_again_never_shows_an_event_twice(self, log_store: LogStore) -> None:
        first = [event(seconds=i) for i in range(5)]
        await log_store.append([*first, first[0]])  # a duplicate inside one batch
        await log_store.append(first[2:])  # a redelivered batch
        got = await log_store.query(LogQuery(limit=100))
        assert sorted(e.event_id for e in got) == sorted(e.event_id for e in first)

    async def test_filters_and_limit(self, log_store: LogStore) -> None:
        sent = [
            event(good_id=g, project_id=p, seconds=10 * p + g) for p in (1, 2) for g in (1, 2, 3)
        ]
        await log_store.append(sent)
        by_project = await log_store.query(LogQuery(project_id=2))
        assert {(e.project_id, e.id) for e in by_project} == {(2, 1), (2, 2), (2, 3)}
        by_good = await log_store.query(LogQuery(good_id=3))
        assert {(e.project_id, e.id) for e in by_good} == {(1, 3), (2, 3)}
        both = await log_store.query(LogQuery(project_id=1, good_id=2))
        assert [(e.project_id, e.id) for e in both] == [(1, 2)]
        newest_two = await log_store.query(LogQuery(limit=2))
        assert [(e.project_id, e.id) for e in newest_two] == [(2, 3), (2, 2)]
        assert await log_store.query(LogQuery(project_id=99)) == []

    async def test_the_change_fields_round_trip(self, log_store: LogStore) -> None:
        change = uuid.uuid4()
        target = attrs.evolve(
            event(good_id=5, type_="reprioritize", priority=1, seconds=1),
            change_id=change,
            before_priority=4,
        )
        shifted = attrs.evolve(
            event(good_id=6, type_="reprioritize", priority=2, seconds=1),
            change_id=change,
            target_id=5,
            before_priority=1,
        )
        renamed = attrs.evolve(
            event(good_id=7, name="new", seconds=2), before_name="old", before_description="d"
        )
        await log_store.append([target, shifted, renamed])
        got = {e.id: e for e in await log_store.query()}
        assert got == {5: target, 6: shifted, 7: renamed}
        assert not got[6].is_target
        assert got[7].change_id == renamed.event_id

    async def test_type_and_time_filters(self, log_store: LogStore) -> None:
        sent = [
            event(seconds=i, type_=("create", "update", "remove", "reprioritize")[i % 4])
            for i in range(12)
        ]
        await log_store.append(sent)
        moved = await log_store.query(LogQuery(types=["reprioritize"]))
        assert [e.event_id for e in moved] == [
            sent[11].event_id,
            sent[7].event_id,
            sent[3].event_id,
        ]
        two = await log_store.query(LogQuery(types=["create", "remove"]))
        assert {e.type for e in two} == {"create", "remove"}
        assert len(two) == 6
        window = await log_store.query(
            LogQuery(since=_BASE + timedelta(seconds=3), until=_BASE + timedelta(seconds=6))
        )
        assert [e.event_id for e in window] == [
            sent[5].event_id,
            sent[4].event_id,
            sent[3].event_id,
        ]

    async def test_keyset_pages_cover_every_event_once(self, log_store: LogStore) -> None:
        sent = [event(seconds=i // 3, good_id=i) for i in range(11)]  # ties in threes
        await log_store.append(sent)
        everything = await log_store.query(LogQuery(limit=100))
        pages: list[GoodEvent] = []
        query = LogQuery(limit=4)
        while page := await log_store.query(query):
            pages += page
            query = query.next_page(page[-1])
        assert pages == everything
        assert len(pages) == 11

    async def test_equal_times_are_ordered_by_event_id(self, log_store: LogStore) -> None:
        sent = [event(seconds=5, good_id=i) for i in range(6)]
        await log_store.append(sent)
        got = await log_store.query()
        assert [e.event_id for e in got] == sorted(
            (e.event_id for e in sent), key=str, reverse=True
        )

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            # one fixture instance per test is the point: both stores persist across examples
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            # each adapter's test class subclasses this suite: one executor per adapter
            HealthCheck.differing_executors,
        ],
    )
    @given(ops=operations)
    async def test_agrees_with_the_reference_model(
        self, log_store: LogStore, reference: LogStore, ops: list[Any]
    ) -> None:
        """``reference`` is a fresh in-memory store (the test module supplies it). Both stores
        live across all examples and see the same operations, so they stay comparable."""
        appended = _seen.setdefault(id(reference), [])
        for op in ops:
            if op[0] == "append":
                _, drawn, replays = op
                # event ids identify an immutable event: never reuse one for other content
                fresh = [attrs.evolve(e, event_id=uuid.uuid4()) for e in drawn]
                batch = [*fresh, *appended[-replays:]] if replays else fresh
                await reference.append(batch)
                await log_store.append(batch)
                appended.extend(fresh)
            else:
                _, query, next_page = op
                expected = await reference.query(query)
                assert await log_store.query(query) == expected
                if next_page and expected:
                    query = query.next_page(expected[-1])
                    expected = await reference.query(query)
                    assert await log_store.query(query) == expected


_seen: dict[int, list[GoodEvent]] = {}
