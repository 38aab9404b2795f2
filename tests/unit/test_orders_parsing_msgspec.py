"""The msgspec parser agrees with the reference parser (``core.orders.parsing.parse_order``) on
every input: the same ``Order`` (including ``created_at``) or the same ``Rejection``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.msgspec_orders import parse_order_fast
from core.contracts.orders import mutated_documents, valid_order_documents
from core.orders.model import Order
from core.orders.parsing import Rejection, parse_order

SAMPLE = Path(__file__).parents[1] / "data" / "model.json"


def assert_agree(data: bytes) -> Order | Rejection:
    fast, reference = parse_order_fast(data), parse_order(data)
    assert fast == reference
    if isinstance(reference, Order):
        assert isinstance(fast, Order)
        assert fast.created_at == reference.created_at
        assert fast.created_at.utcoffset() == reference.created_at.utcoffset()
    return reference


def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_the_canonical_sample() -> None:
    assert isinstance(assert_agree(SAMPLE.read_bytes()), Order)


@settings(max_examples=300)
@given(valid_order_documents(), st.booleans())
def test_valid_documents_agree(doc: dict[str, Any], ascii_only: bool) -> None:
    data = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert isinstance(assert_agree(data), Order)


@settings(max_examples=500)
@given(mutated_documents())
def test_mutated_documents_agree(doc: dict[str, Any]) -> None:
    assert_agree(encode(doc))


#: Strings on the edges of the rules: Unicode blanks and digits, newlines after a valid value,
#: NULs, lone surrogates, lengths at the limit.
_tricky = st.sampled_from(
    [
        "",
        " ",
        "\u00a0",
        "\u2003\t",
        "\x1c",
        "\u200b",
        "x",
        "12\n",
        "\n12",
        "١٢٣",
        "²",
        "12 ",
        "+9720000000",
        "+9720000000\n",
        "+٩٧٢٠٠٠٠٠٠٠",
        "a@b.c",
        "a@b.c\n",
        "a@b",
        "ÀBC",
        "USD",
        "USD\n",
        "a\x00b",
        "\ud800",
        "x" * 1024,
        "x" * 1025,
        "é" * 1024,
        "é" * 1025,
        "2021-11-26T06:22:19Z",
        "2021-11-26T06:22:19Z\n",
        "2021-11-26t06:22:19.1234567z",
        "2021-11-26 06:22:19+03:00",
        "0001-01-01T00:00:00+01:00",
        "abc_DEF-1",
        "x" * 64,
        "x" * 65,
    ]
)
_tricky_values = st.one_of(
    _tricky,
    st.sampled_from([0, -1, 100, 101, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1.0, True, None]),
)


@st.composite
def tricky_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(valid_order_documents())
    paths: list[tuple[str | int, ...]] = [
        (k,) for k in doc if k not in ("delivery", "payment", "items")
    ]
    paths += [("delivery", k) for k in doc["delivery"]] + [("payment", k) for k in doc["payment"]]
    paths += [("items", n, k) for n, item in enumerate(doc["items"]) for k in item]
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True)):
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(_tricky_values)
    if draw(st.booleans()):
        doc["unknown"] = draw(_tricky_values)
    return doc


@settings(max_examples=1000)
@given(tricky_documents())
def test_edge_values_agree(doc: dict[str, Any]) -> None:
    assert_agree(encode(doc))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_agree(data: bytes) -> None:
    assert_agree(data)


def _sample_text() -> str:
    return SAMPLE.read_text()


@pytest.mark.parametrize(
    "data",
    [
        # NUL and invalid UTF-8 in a field the order does not use: the reference decides
        _sample_text().replace("{", '{"extra": "\\u0000",', 1).encode(),
        _sample_text().replace("{", '{"extra": "\xff",', 1).encode("latin-1"),
        _sample_text().replace("{", '{"extra": "\\ud800",', 1).encode(),
        _sample_text().replace("{", '{"extra": NaN,', 1).encode(),
        _sample_text().replace("{", '{"extra": 1e999,', 1).encode(),
        # a duplicate key: the last one wins, in both
        _sample_text().replace("{", '{"order_uid": "first",', 1).encode(),
        _sample_text().replace('"entry"', '"entry": 5, "entry"', 1).encode(),
        # escaped key names
        _sample_text().replace('"entry"', '"\\u0065ntry"', 1).encode(),
        b"\xef\xbb\xbf" + SAMPLE.read_bytes(),
        SAMPLE.read_bytes() + b"\n\t ",
        SAMPLE.read_bytes() + b"x",
        b"[]",
        b"",
    ],
    ids=[
        "nul-unknown",
        "bad-utf8-unknown",
        "surrogate-unknown",
        "nan-unknown",
        "inf-unknown",
        "duplicate-uid",
        "duplicate-wrong-type-first",
        "escaped-key",
        "bom",
        "trailing-space",
        "trailing-garbage",
        "array",
        "empty",
    ],
)
def test_raw_edge_cases_agree(data: bytes) -> None:
    assert_agree(data)
