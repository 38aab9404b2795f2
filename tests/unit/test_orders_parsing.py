from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.contracts.orders import mutated_documents, valid_order_documents
from core.orders.model import Order
from core.orders.parsing import (
    INVALID_ORDER,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    NOT_UTF8,
    Rejection,
    parse_order,
)

SAMPLE = Path(__file__).parents[1] / "data" / "model.json"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_bytes())


def rejected(doc: Any) -> dict[str, str]:
    result = parse_order(json.dumps(doc).encode())
    assert isinstance(result, Rejection), result
    assert result.reason == INVALID_ORDER
    return {e.field: e.error for e in result.errors}


def test_the_canonical_sample_is_valid_and_round_trips() -> None:
    order = parse_order(SAMPLE.read_bytes())
    assert isinstance(order, Order)
    assert order.to_document() == sample()
    assert order.items[0].total_price == 317
    assert order.created_at.isoformat() == "2021-11-26T06:22:19+00:00"


def test_unknown_fields_are_ignored_and_dropped() -> None:
    doc = sample()
    doc["extra"] = {"anything": [1, 2]}
    doc["delivery"]["floor"] = 3
    doc["items"][0]["colour"] = "red"
    order = parse_order(json.dumps(doc).encode())
    assert isinstance(order, Order)
    assert order.to_document() == sample()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe{}", NOT_UTF8),
        (b'{"order_uid": "x"', MALFORMED_JSON),
        (b"", MALFORMED_JSON),
        (b'{"a": NaN}', MALFORMED_JSON),
        (b"[" * 100_000, MALFORMED_JSON),
        (b"[1, 2]", NOT_AN_OBJECT),
        (b'"order"', NOT_AN_OBJECT),
        (b"null", NOT_AN_OBJECT),
    ],
)
def test_undecodable_messages(data: bytes, reason: str) -> None:
    result = parse_order(data)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.errors


@pytest.mark.parametrize(
    ("path", "value", "field", "error_part"),
    [
        (("order_uid",), 123, "order_uid", "must be a string"),
        (("order_uid",), "bad id!", "order_uid", "1..64 characters"),
        (("order_uid",), "x" * 65, "order_uid", "1..64 characters"),
        (("delivery", "zip"), 2639809, "delivery.zip", "must be a string, not an integer"),
        (("items", 0, "size"), 0, "items.0.size", "must be a string"),
        (("shardkey",), "nine", "shardkey", "digits"),
        (("sm_id",), "99", "sm_id", "must be an integer, not a string"),
        (("sm_id",), 99.5, "sm_id", "must be an integer"),
        (("sm_id",), True, "sm_id", "not a boolean"),
        (("sm_id",), None, "sm_id", "not null"),
        (("sm_id",), 2**63, "sm_id", "64-bit"),
        (("delivery", "email"), "test.gmail.com", "delivery.email", "e-mail"),
        (("delivery", "email"), "a@b", "delivery.email", "e-mail"),
        (("delivery", "phone"), "9720000000", "delivery.phone", "'+'"),
        (("delivery", "phone"), "+123456", "delivery.phone", "7 to 15"),
        (("delivery", "phone"), "+1234567890123456", "delivery.phone", "7 to 15"),
        (("payment", "currency"), "usd", "payment.currency", "three capital"),
        (("payment", "currency"), "USDT", "payment.currency", "three capital"),
        (("date_created",), "2021-11-26", "date_created", "RFC 3339"),
        (("date_created",), "2021-11-26T06:22:19", "date_created", "RFC 3339"),
        (("date_created",), "2021-13-26T06:22:19Z", "date_created", "RFC 3339"),
        (("date_created",), "yesterday", "date_created", "RFC 3339"),
        (("items", 0, "sale"), 101, "items.0.sale", "between 0 and 100"),
        (("items", 0, "sale"), -1, "items.0.sale", "between 0 and 100"),
        (("delivery", "name"), "  ", "delivery.name", "empty"),
        (("delivery", "name"), "a\x00b", "delivery.name", "NUL"),
        (("delivery", "city"), "\ud800", "delivery.city", "surrogate"),
        (("entry",), "x" * 2000, "entry", "longer than"),
        (("delivery",), "Kiryat", "delivery", "must be an object"),
        (("items",), {}, "items", "must be an array"),
        (("items",), [], "items", "at least one"),
        (("items", 0), "item", "items.0", "must be an object"),
    ],
)
def test_field_rules(path: tuple[Any, ...], value: Any, field: str, error_part: str) -> None:
    doc = sample()
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    errors = rejected(doc)
    assert field in errors, errors
    assert error_part in errors[field]


@pytest.mark.parametrize(
    "path",
    [
        ("order_uid",),
        ("delivery",),
        ("delivery", "email"),
        ("payment", "amount"),
        ("items",),
        ("items", 0, "rid"),
        ("oof_shard",),
        ("date_created",),
    ],
)
def test_missing_fields_are_named(path: tuple[Any, ...]) -> None:
    doc = sample()
    target = doc
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    errors = rejected(doc)
    dotted = ".".join(str(p) for p in path)
    assert errors[dotted] == "is required"


def test_negative_money_is_rejected() -> None:
    doc = sample()
    doc["payment"]["custom_fee"] = -5
    doc["payment"]["amount"] = 1812
    assert rejected(doc) == {"payment.custom_fee": "must not be negative"}


def test_empty_request_id_and_internal_signature_are_allowed() -> None:
    doc = sample()
    assert doc["payment"]["request_id"] == ""
    assert doc["internal_signature"] == ""
    assert isinstance(parse_order(json.dumps(doc).encode()), Order)


def test_totals_must_be_consistent() -> None:
    doc = sample()
    doc["payment"]["goods_total"] = 318
    errors = rejected(doc)
    assert "317" in errors["payment.goods_total"]
    assert "1818" in errors["payment.amount"]

    doc = sample()
    doc["payment"]["amount"] = 1800
    assert list(rejected(doc)) == ["payment.amount"]


def test_item_track_numbers_must_match_the_order() -> None:
    doc = sample()
    doc["items"].append(
        copy.deepcopy(doc["items"][0]) | {"track_number": "OTHER", "total_price": 0}
    )
    assert list(rejected(doc)) == ["items.1.track_number"]


def test_every_problem_is_reported_at_once() -> None:
    doc = sample()
    doc["delivery"]["email"] = "nope"
    doc["payment"]["currency"] = "usd"
    del doc["locale"]
    assert set(rejected(doc)) == {"delivery.email", "payment.currency", "locale"}


def test_fractional_seconds_beyond_microseconds_are_accepted_verbatim() -> None:
    doc = sample()
    doc["date_created"] = "2021-11-26T06:22:19.123456789+03:00"
    order = parse_order(json.dumps(doc).encode())
    assert isinstance(order, Order)
    assert order.to_document()["date_created"] == "2021-11-26T06:22:19.123456789+03:00"
    assert order.created_at.isoformat() == "2021-11-26T06:22:19.123456+03:00"


@settings(max_examples=200)
@given(valid_order_documents())
def test_generated_valid_documents_are_accepted_unchanged(doc: dict[str, Any]) -> None:
    order = parse_order(json.dumps(doc, ensure_ascii=False).encode())
    assert isinstance(order, Order), order
    assert order.to_document() == doc


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(parse_order(data), Order | Rejection)


@settings(max_examples=300)
@given(mutated_documents())
def test_mutated_documents_never_raise_and_rejections_name_fields(doc: dict[str, Any]) -> None:
    result = parse_order(json.dumps(doc).encode())
    if isinstance(result, Rejection):
        assert result.reason == INVALID_ORDER
        assert all(e.field and e.error for e in result.errors)
    else:
        assert result.to_document() == {k: doc[k] for k in result.to_document()}
