"""The demo producer: valid orders pass the validator, each corruption kind is rejected with the
reason it is meant to cause, and the invalid share is honoured."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.bus import MemoryEventBus
from core.orders.model import Order
from core.orders.parsing import INVALID_ORDER, MALFORMED_JSON, NOT_UTF8, Rejection, parse_order
from entrypoints.produce import CORRUPTIONS, make_order, produce_orders

EXPECTED_REASON = {
    "broken_json": {MALFORMED_JSON},
    "wrong_types": {INVALID_ORDER},
    "missing_field": {INVALID_ORDER},
    "inconsistent_totals": {INVALID_ORDER},
    "not_utf8": {NOT_UTF8},
}


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_orders_are_valid(seed: int) -> None:
    import json

    doc = make_order(random.Random(seed))
    assert isinstance(parse_order(json.dumps(doc).encode()), Order)


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@settings(max_examples=100)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_each_corruption_is_rejected_for_its_reason(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    result = parse_order(CORRUPTIONS[kind](rng, make_order(rng)))
    assert isinstance(result, Rejection)
    assert result.reason in EXPECTED_REASON[kind]


async def test_produce_publishes_the_count_with_the_invalid_share() -> None:
    bus = MemoryEventBus()
    seen: list[int] = []
    report = await produce_orders(
        bus, "orders", count=1000, invalid_share=0.2, seed=3, chunk=100, progress=seen.append
    )
    messages = bus.messages("orders")
    assert len(messages) == 1000 == report.total == sum(seen)
    valid = [m for m in messages if isinstance(parse_order(m), Order)]
    assert len(valid) == report.valid
    assert 150 <= sum(report.invalid.values()) <= 250
    assert set(report.invalid) == set(CORRUPTIONS)
    uids = {o.order_uid for o in (parse_order(m) for m in valid) if isinstance(o, Order)}
    assert uids == set(report.uids)


async def test_a_share_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        await produce_orders(MemoryEventBus(), "orders", count=1, invalid_share=1.5)
