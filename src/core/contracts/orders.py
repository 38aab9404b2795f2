"""The order repository contract suite, and hypothesis strategies for order documents (built
by the one order factory, ``core.orders.documents.order_document``).

Any ``OrderRepository`` (ours or a user's) is checked by subclassing ``OrderRepositoryContract``
in a test module that provides an ``order_repository`` fixture yielding a fresh, empty
repository, and, optionally, an ``order_repository_outage`` fixture (a callable that makes the
store unreachable) for the failure cases.

``OrderRepositoryAgreement`` is a hypothesis state machine that drives a repository under test
and the in-memory reference model with the same random batches and asserts equal observable
results; ``run_agreement`` runs it against any repository factory.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.orders.documents import order_document, sale_price
from core.orders.model import Order
from core.orders.parsing import parse_order, validate_document
from core.ports.orders import MAX_RECENT, OrderRepository, OrderSummary

# --- strategies -------------------------------------------------------------------------------

_UID_ALPHABET = string.ascii_letters + string.digits + "_-"
_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")
_maybe_empty = st.one_of(st.just(""), _text)
_digits = st.text(alphabet=string.digits, min_size=1, max_size=10)
_money = st.integers(min_value=0, max_value=10**9)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
uids = st.text(alphabet=_UID_ALPHABET, min_size=1, max_size=64)
_emails = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet=string.ascii_lowercase + string.digits + "._+", min_size=1, max_size=12),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12),
    st.sampled_from(["com", "ru", "org", "io", "co.uk"]),
)
_phones = st.builds("+{}".format, st.text(alphabet=string.digits, min_size=7, max_size=15))
_timestamps = st.builds(
    lambda moment, offset_minutes, fraction, zulu: _rfc3339(moment, offset_minutes, fraction, zulu),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.booleans(),
    st.booleans(),
)


def _rfc3339(moment: datetime, offset_minutes: int, fraction: bool, zulu: bool) -> str:
    if zulu:
        offset = "Z"
    else:
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        offset = f"{sign}{hours:02d}:{minutes:02d}"
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        stamp += f".{moment.microsecond:06d}"
    return stamp + offset


@st.composite
def valid_order_documents(
    draw: st.DrawFn, uid: str | None = None, dates: st.SearchStrategy[str] | None = None
) -> dict[str, Any]:
    """A JSON-ready order document that satisfies every validation rule."""
    track = draw(_text)
    item_count = draw(st.integers(min_value=1, max_value=4))
    items: list[dict[str, Any]] = [
        {
            "chrt_id": draw(_int64),
            "price": draw(_money),
            "rid": draw(_text),
            "name": draw(_text),
            "sale": draw(st.integers(min_value=0, max_value=100)),
            "size": draw(_digits),
            "total_price": draw(_money),
            "nm_id": draw(_int64),
            "brand": draw(_text),
            "status": draw(_int64),
        }
        for _ in range(item_count)
    ]
    delivery_cost = draw(_money)
    custom_fee = draw(_money)
    return order_document(
        order_uid=uid if uid is not None else draw(uids),
        track_number=track,
        entry=draw(_text),
        delivery={
            "name": draw(_text),
            "phone": draw(_phones),
            "zip": draw(_digits),
            "city": draw(_text),
            "address": draw(_text),
            "region": draw(_text),
            "email": draw(_emails),
        },
        payment={
            "transaction": draw(_text),
            "request_id": draw(_maybe_empty),
            "currency": draw(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3)),
            "provider": draw(_text),
            "payment_dt": draw(st.integers(min_value=0, max_value=2**40)),
            "bank": draw(_text),
            "delivery_cost": delivery_cost,
            "custom_fee": custom_fee,
        },
        items=items,
        locale=draw(_text),
        internal_signature=draw(_maybe_empty),
        customer_id=draw(_text),
        delivery_service=draw(_text),
        shardkey=draw(_digits),
        sm_id=draw(_int64),
        date_created=draw(dates if dates is not None else _timestamps),
        oof_shard=draw(_digits),
    )


def example_document(uid: str, variant: int = 0) -> dict[str, Any]:
    """A deterministic valid document (the canonical sample's shape), varied by ``variant``."""
    prices = [100 + variant, 250, 999 * (variant % 3)]
    items: list[dict[str, Any]] = [
        {
            "chrt_id": 9934930 + i,
            "price": price,
            "rid": f"rid-{uid}-{i}",
            "name": ["Mascaras", "Помада", 'Tee "quoted"'][i],
            "sale": 10 * i,
            "size": str(i),
            "total_price": sale_price(price, 10 * i),
            "nm_id": 2389212 + variant,
            "brand": "Vivienne Sabo",
            "status": 202,
        }
        for i, price in enumerate(prices[: 1 + variant % 3])
    ]
    return order_document(
        order_uid=uid,
        track_number=f"TRACK{variant}",
        entry="WBIL",
        delivery={
            "name": "Test Testov",
            "phone": "+9720000000",
            "zip": "2639809",
            "city": "Kiryat Mozkin",
            "address": f"Ploshad Mira {variant}",
            "region": "Kraiot",
            "email": "test@gmail.com",
        },
        payment={
            "transaction": uid,
            "request_id": "",
            "currency": "USD",
            "provider": "wbpay",
            "payment_dt": 1637907727 + variant,
            "bank": "alpha",
            "delivery_cost": 1500,
            "custom_fee": variant,
        },
        items=items,
        locale="en",
        internal_signature="",
        customer_id="test",
        delivery_service="meest",
        shardkey="9",
        sm_id=99,
        date_created=f"2021-11-26T06:{variant % 60:02d}:19Z",
        oof_shard="1",
    )


def order_from(doc: dict[str, Any]) -> Order:
    parsed = validate_document(doc)
    assert isinstance(parsed, Order), parsed
    return parsed


@st.composite
def valid_orders(
    draw: st.DrawFn, uid: str | None = None, dates: st.SearchStrategy[str] | None = None
) -> Order:
    return order_from(draw(valid_order_documents(uid, dates)))


#: A few instants, some equal in different notations, so "newest" has ties to break.
few_dates = st.sampled_from(
    [
        "2024-01-01T10:00:00Z",
        "2024-01-01T13:00:00+03:00",
        "2024-01-01T10:00:00.000001Z",
        "2023-12-31T23:59:59.999999-05:00",
        "2024-01-02T00:00:00Z",
    ]
)


def _json_value(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    _json_value,
    max_leaves=10,
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with some fields removed or replaced by arbitrary JSON values."""
    doc = draw(valid_order_documents())
    paths: list[tuple[str | int, ...]] = [(k,) for k in doc]
    paths += [("delivery", k) for k in doc["delivery"]] + [("payment", k) for k in doc["payment"]]
    paths += [("items", 0, k) for k in doc["items"][0]]
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True)):
        parent: Any = doc
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                break
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


# --- the repository contract ------------------------------------------------------------------


def _decoded(body: bytes | None) -> Any:
    assert body is not None
    return json.loads(body)


class OrderRepositoryContract:
    """Behaviour every ``OrderRepository`` must show. Needs an ``order_repository`` fixture."""

    async def test_ping_answers_when_reachable(self, order_repository: OrderRepository) -> None:
        await order_repository.ping()

    async def test_empty_repository(self, order_repository: OrderRepository) -> None:
        assert await order_repository.get("missing") is None
        assert await order_repository.newest(10) == []
        assert await order_repository.count() == 0

    async def test_the_canonical_sample_round_trips(
        self, order_repository: OrderRepository, canonical_sample: bytes
    ) -> None:
        order = parse_order(canonical_sample)
        assert isinstance(order, Order)
        result = await order_repository.add_many([order])
        assert (result.inserted, result.duplicates) == (1, 0)
        assert _decoded(await order_repository.get(order.order_uid)) == json.loads(canonical_sample)

    async def test_documents_are_compact_json(
        self, order_repository: OrderRepository, canonical_sample: bytes
    ) -> None:
        # The bytes are served and cached as they are: whitespace would cost every response.
        order = parse_order(canonical_sample)
        assert isinstance(order, Order)
        await order_repository.add_many([order])
        compact = json.dumps(
            json.loads(canonical_sample), ensure_ascii=False, separators=(",", ":")
        )
        assert await order_repository.get(order.order_uid) == compact.encode()
        assert await order_repository.newest(1) == [(order.order_uid, compact.encode())]

    async def test_duplicates_are_counted_and_the_first_write_wins(
        self, order_repository: OrderRepository
    ) -> None:
        first = order_from(example_document("dup-1", 1))
        second = order_from(example_document("dup-1", 2))
        other = order_from(example_document("other-1", 3))
        result = await order_repository.add_many([first])
        assert (result.inserted, result.duplicates) == (1, 0)
        result = await order_repository.add_many([second, other, other])
        assert (result.inserted, result.duplicates) == (1, 2)
        assert _decoded(await order_repository.get("dup-1")) == first.to_document()
        assert await order_repository.count() == 2

    async def test_newest_orders_by_date_created(self, order_repository: OrderRepository) -> None:
        base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        orders = []
        for index, uid in enumerate(["c", "a", "b", "d"]):
            doc = example_document(uid, index)
            moment = base + timedelta(minutes=min(index, 2))  # "b" and "d" tie
            zone = timezone(timedelta(hours=index))
            doc["date_created"] = moment.astimezone(zone).isoformat()
            orders.append(order_from(doc))
        await order_repository.add_many(orders)
        newest = await order_repository.newest(3)
        assert [uid for uid, _ in newest] == ["b", "d", "a"]
        assert [_decoded(body)["order_uid"] for _, body in newest] == ["b", "d", "a"]
        assert await order_repository.newest(0) == []
        assert len(await order_repository.newest(100)) == 4

    async def test_recent_orders_are_keyset_paged_summaries(
        self, order_repository: OrderRepository
    ) -> None:
        base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        docs = []
        for index in range(7):
            doc = example_document(f"r{index}", index)
            doc["date_created"] = (base + timedelta(minutes=index // 2)).isoformat()  # ties
            docs.append(doc)
        await order_repository.add_many([order_from(d) for d in docs])
        want = [uid for uid, _ in await order_repository.newest(7)]
        first = await order_repository.recent(3)
        assert [s.order_uid for s in first] == want[:3]
        second = await order_repository.recent(3, before=first[-1].order_uid)
        assert [s.order_uid for s in second] == want[3:6]
        last = await order_repository.recent(3, before=second[-1].order_uid)
        assert [s.order_uid for s in last] == want[6:]
        assert await order_repository.recent(3, before=last[-1].order_uid) == []
        assert await order_repository.recent(3, before="no-such-order") == []
        assert await order_repository.recent(0) == []
        doc = next(d for d in docs if d["order_uid"] == first[0].order_uid)
        assert first[0] == OrderSummary(
            order_uid=doc["order_uid"],
            date_created=doc["date_created"],
            track_number=doc["track_number"],
            customer_id=doc["customer_id"],
            name=doc["delivery"]["name"],
            city=doc["delivery"]["city"],
            amount=doc["payment"]["amount"],
            currency=doc["payment"]["currency"],
            items=len(doc["items"]),
        )

    async def test_recent_is_bounded(self, order_repository: OrderRepository) -> None:
        docs = [example_document(f"b{i:03}", i) for i in range(MAX_RECENT + 5)]
        await order_repository.add_many([order_from(d) for d in docs])
        assert len(await order_repository.recent(MAX_RECENT + 5)) == MAX_RECENT

    async def test_documents_round_trip_unchanged(self, order_repository: OrderRepository) -> None:
        docs = [example_document(f"rt-{i}", i) for i in range(20)]
        result = await order_repository.add_many([order_from(d) for d in docs])
        assert result.inserted == 20
        for doc in docs:
            assert _decoded(await order_repository.get(doc["order_uid"])) == doc

    async def test_an_empty_batch_is_a_no_op(self, order_repository: OrderRepository) -> None:
        result = await order_repository.add_many([])
        assert (result.inserted, result.duplicates) == (0, 0)


@pytest.fixture
def canonical_sample() -> bytes:
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "tests" / "data" / "model.json"
        if candidate.exists():
            return candidate.read_bytes()
    raise FileNotFoundError("tests/data/model.json")


# --- stateful agreement -----------------------------------------------------------------------

RepositoryFactory = Callable[[], Awaitable[OrderRepository]]


def run_agreement(
    make_subject: RepositoryFactory,
    make_reference: RepositoryFactory,
    *,
    max_examples: int = 20,
    cleanup: Callable[[OrderRepository], Awaitable[None]] | None = None,
) -> None:
    """Drive a repository and the reference model with the same random operations (batches
    with new and repeated ids, reads, newest-N) and assert they agree. Call it from a sync test:
    it runs its own event loop."""

    class Agreement(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.subject = self.loop.run_until_complete(make_subject())
            self.reference = self.loop.run_until_complete(make_reference())
            self.uids: list[str] = []

        def run(self, coro: Awaitable[Any]) -> Any:
            return self.loop.run_until_complete(coro)

        @rule(
            fresh=st.lists(valid_orders(dates=few_dates), max_size=5),
            repeats=st.lists(st.integers(min_value=0, max_value=50), max_size=3),
            variant=st.integers(min_value=0, max_value=100),
        )
        def add_batch(self, fresh: list[Order], repeats: list[int], variant: int) -> None:
            batch = list(fresh)
            for index in repeats:
                if self.uids:
                    uid = self.uids[index % len(self.uids)]
                    batch.append(order_from(example_document(uid, variant)))
            got = self.run(self.subject.add_many(batch))
            want = self.run(self.reference.add_many(batch))
            assert got == want
            self.uids.extend(o.order_uid for o in fresh)

        @rule(index=st.integers(min_value=0, max_value=50), unknown=uids)
        def get(self, index: int, unknown: str) -> None:
            uid = self.uids[index % len(self.uids)] if self.uids else unknown
            got = self.run(self.subject.get(uid))
            want = self.run(self.reference.get(uid))
            assert (got is None) == (want is None)
            if got is not None:
                assert json.loads(got) == json.loads(want)

        @rule(limit=st.integers(min_value=0, max_value=8))
        def newest(self, limit: int) -> None:
            got = self.run(self.subject.newest(limit))
            want = self.run(self.reference.newest(limit))
            assert [(u, json.loads(b)) for u, b in got] == [(u, json.loads(b)) for u, b in want]

        @invariant()
        def same_count(self) -> None:
            assert self.run(self.subject.count()) == self.run(self.reference.count())

        def teardown(self) -> None:
            if cleanup is not None:
                self.run(cleanup(self.subject))
            self.loop.close()

    Agreement.TestCase.settings = settings(
        max_examples=max_examples,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    Agreement.TestCase().runTest()
