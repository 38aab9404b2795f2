"""The outbox relay store contract, as a reusable suite. Provide an ``outbox`` fixture yielding
an ``OutboxPair`` over a fresh, empty outbox — the catalog store whose units of work write the
outbox, and the relay store under test that drains it — and subclass ``OutboxRelayStoreContract``.

Records are written the way the catalog writes them (``uow.outbox.add`` then ``commit``), and
everything is observed through the relay port itself: what a claim holds is what is unsent.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from core.catalog.events import GoodEvent
from core.contracts.logstore import event
from core.ports.audit import OutboxBacklog, OutboxRelayStore
from core.ports.catalog import CatalogStore


@attrs.frozen(kw_only=True)
class OutboxPair:
    store: CatalogStore
    """Writes the outbox (the catalog's unit of work)."""
    relay: OutboxRelayStore
    """Drains it: the adapter under test."""
    topic: str = "goods.events"
    """The topic ``store`` writes on every record."""


async def write(pair: OutboxPair, events: Sequence[GoodEvent]) -> None:
    async with pair.store.unit_of_work() as uow:
        await uow.outbox.add(events)
        await uow.commit()


async def write_new(pair: OutboxPair, count: int) -> list[GoodEvent]:
    """``count`` new events (of goods 0, 1, ...) written in one unit of work, as ``write``."""
    events = [event(good_id=i) for i in range(count)]
    await write(pair, events)
    return events


async def unsent(pair: OutboxPair) -> list[GoodEvent]:
    """The unsent events, oldest first, from a claim that marks nothing."""
    async with pair.relay.claim(10_000) as batch:
        return [GoodEvent.from_json(r.payload) for r in batch.records]


class OutboxRelayStoreContract:
    async def test_an_empty_outbox_claims_nothing(self, outbox: OutboxPair) -> None:
        async with outbox.relay.claim(10) as batch:
            assert list(batch.records) == []
        assert await outbox.relay.prune_sent(0, 100) == 0

    async def test_claims_oldest_first_and_marks_sent_on_clean_exit(
        self, outbox: OutboxPair
    ) -> None:
        events = [event(good_id=i, seconds=i) for i in range(5)]
        await write(outbox, events)
        async with outbox.relay.claim(3) as batch:
            records = list(batch.records)
            assert [r.event_id for r in records] == [e.event_id for e in events[:3]]
            assert [r.payload for r in records] == [e.to_json() for e in events[:3]]
            assert all(r.key == str(r.event_id) for r in records)
            assert all(r.topic == outbox.topic for r in records)
            await batch.mark_sent()
        assert await unsent(outbox) == events[3:]

    async def test_a_claim_left_without_mark_sent_or_by_an_error_leaves_records_unsent(
        self, outbox: OutboxPair
    ) -> None:
        events = await write_new(outbox, 4)
        async with outbox.relay.claim(10) as batch:
            assert len(batch.records) == 4  # published nothing, marked nothing

        class PublishFailed(Exception):
            pass

        async def publish_then_fail() -> None:
            async with outbox.relay.claim(10) as batch:
                await batch.mark_sent()
                raise PublishFailed  # the marks are undone with the claim

        with pytest.raises(PublishFailed):
            await publish_then_fail()
        assert await unsent(outbox) == events

    async def test_claims_held_at_once_are_disjoint(self, outbox: OutboxPair) -> None:
        await write_new(outbox, 10)
        async with outbox.relay.claim(6) as first, outbox.relay.claim(6) as second:
            held_first = {r.event_id for r in first.records}
            held_second = {r.event_id for r in second.records}
            assert (len(held_first), len(held_second)) == (6, 4)
            assert not held_first & held_second
            await first.mark_sent()
            await second.mark_sent()
        assert await unsent(outbox) == []

    async def test_a_released_claim_is_claimed_again(self, outbox: OutboxPair) -> None:
        events = await write_new(outbox, 3)
        async with outbox.relay.claim(2) as batch:
            assert len(batch.records) == 2
        async with outbox.relay.claim(2) as batch:
            assert [r.event_id for r in batch.records] == [e.event_id for e in events[:2]]

    async def test_prune_deletes_only_sent_records_a_bounded_batch_at_a_time(
        self, outbox: OutboxPair
    ) -> None:
        events = await write_new(outbox, 7)
        async with outbox.relay.claim(5) as batch:
            await batch.mark_sent()
        assert await outbox.relay.prune_sent(3600, 100) == 0  # sent just now: kept
        assert await outbox.relay.prune_sent(0, 2) == 2  # bounded
        assert await outbox.relay.prune_sent(0, 100) == 3
        assert await outbox.relay.prune_sent(0, 100) == 0
        assert await unsent(outbox) == events[5:]  # unsent records are never pruned

    async def test_the_backlog_counts_the_unsent_records_and_ages_the_oldest(
        self, outbox: OutboxPair
    ) -> None:
        assert await outbox.relay.backlog() == OutboxBacklog(pending=0, oldest_age=None)
        await write_new(outbox, 3)
        backlog = await outbox.relay.backlog()
        assert backlog.pending == 3
        assert backlog.oldest_age is not None
        assert backlog.oldest_age >= 0
        async with outbox.relay.claim(2) as batch:
            await batch.mark_sent()
        assert (await outbox.relay.backlog()).pending == 1
        async with outbox.relay.claim(2) as batch:
            assert (await outbox.relay.backlog()).pending == 1  # held, not yet sent
            await batch.mark_sent()
        assert await outbox.relay.backlog() == OutboxBacklog(pending=0, oldest_age=None)
