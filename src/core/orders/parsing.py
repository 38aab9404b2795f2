"""Turn the bytes of an order message into an ``Order`` or the reasons it is invalid.

``parse_order`` never raises: whatever the bytes, the result is either an ``Order`` or a
``Rejection`` listing every problem found (``docs/orders.md`` states the rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from core.orders.model import (
    CURRENCY_RE,
    EMAIL_RE,
    PHONE_RE,
    Delivery,
    Item,
    Order,
    Payment,
    is_well_formed_uid,
)

#: Why a message was rejected, the ``reason`` of the dead-letter envelope.
NOT_UTF8: Final = "not_utf8"
MALFORMED_JSON: Final = "malformed_json"
NOT_AN_OBJECT: Final = "not_an_object"
INVALID_ORDER: Final = "invalid_order"

MAX_STRING = 1024
MAX_ITEMS = 1000
INT64_MAX = 2**63 - 1

_DIGITS_RE = re.compile(r"[0-9]+")
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@attrs.frozen(kw_only=True, slots=True)
class FieldError:
    """One problem: ``field`` is a dotted path (``items.0.price``), ``error`` says what is wrong."""

    field: str
    error: str


@attrs.frozen(kw_only=True, slots=True)
class Rejection:
    """A message that is not a valid order; ``reason`` is one of the module's reason constants."""

    reason: str
    errors: tuple[FieldError, ...] = ()

    def errors_as_json(self) -> list[dict[str, str]]:
        return [{"field": e.field, "error": e.error} for e in self.errors]


class _Collector:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, error: str) -> None:
        self.errors.append(FieldError(field=field, error=error))


# A field check returns an error text or None; it is only called with a value of the right type.
_Check = Callable[[Any], "str | None"]


def _text_ok(value: str) -> str | None:
    if len(value) > MAX_STRING:
        return f"longer than {MAX_STRING} characters"
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode (lone surrogate)"
    return None


def _nonblank(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _pattern(regex: re.Pattern[str], what: str) -> _Check:
    def check(value: str) -> str | None:
        return None if regex.fullmatch(value) else f"must be {what}"

    return check


def _non_negative(value: int) -> str | None:
    return "must not be negative" if value < 0 else None


def _sale(value: int) -> str | None:
    return None if 0 <= value <= 100 else "must be between 0 and 100"


def _uid(value: str) -> str | None:
    return None if is_well_formed_uid(value) else "must be 1..64 characters of A-Z a-z 0-9 _ -"


_NUMERIC = _pattern(_DIGITS_RE, "a string of digits")

# field -> (JSON type, checks). "str" must be non-empty unless listed with allow_empty.
_Spec = dict[str, tuple[type, tuple[_Check, ...]]]

_DELIVERY: _Spec = {
    "name": (str, (_nonblank,)),
    "phone": (str, (_pattern(PHONE_RE, "'+' followed by 7 to 15 digits"),)),
    "zip": (str, (_NUMERIC,)),
    "city": (str, (_nonblank,)),
    "address": (str, (_nonblank,)),
    "region": (str, (_nonblank,)),
    "email": (str, (_pattern(EMAIL_RE, "a well-formed e-mail address"),)),
}
_PAYMENT: _Spec = {
    "transaction": (str, (_nonblank,)),
    "request_id": (str, ()),
    "currency": (str, (_pattern(CURRENCY_RE, "three capital letters (ISO 4217)"),)),
    "provider": (str, (_nonblank,)),
    "amount": (int, (_non_negative,)),
    "payment_dt": (int, (_non_negative,)),
    "bank": (str, (_nonblank,)),
    "delivery_cost": (int, (_non_negative,)),
    "goods_total": (int, (_non_negative,)),
    "custom_fee": (int, (_non_negative,)),
}
_ITEM: _Spec = {
    "chrt_id": (int, ()),
    "track_number": (str, (_nonblank,)),
    "price": (int, (_non_negative,)),
    "rid": (str, (_nonblank,)),
    "name": (str, (_nonblank,)),
    "sale": (int, (_sale,)),
    "size": (str, (_NUMERIC,)),
    "total_price": (int, (_non_negative,)),
    "nm_id": (int, ()),
    "brand": (str, (_nonblank,)),
    "status": (int, ()),
}
_ORDER: _Spec = {
    "order_uid": (str, (_uid,)),
    "track_number": (str, (_nonblank,)),
    "entry": (str, (_nonblank,)),
    "locale": (str, (_nonblank,)),
    "internal_signature": (str, ()),
    "customer_id": (str, (_nonblank,)),
    "delivery_service": (str, (_nonblank,)),
    "shardkey": (str, (_NUMERIC,)),
    "sm_id": (int, ()),
    "date_created": (str, ()),
    "oof_shard": (str, (_NUMERIC,)),
}

#: What ingest uses to turn message bytes into an order: ``parse_order`` below is the reference;
#: a faster one (``adapters.msgspec_orders``) must return an equal result for every input.
OrderParser = Callable[[bytes], "Order | Rejection"]

_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "an array"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _section(
    obj: Mapping[str, Any], spec: _Spec, prefix: str, out: _Collector
) -> dict[str, Any] | None:
    """Check ``obj`` against ``spec``; the known fields if all are fine, else None."""
    values: dict[str, Any] = {}
    ok = True
    for name, (kind, checks) in spec.items():
        path = f"{prefix}{name}"
        if name not in obj:
            out.add(path, "is required")
            ok = False
            continue
        value = obj[name]
        if type(value) is not kind:  # bool is an int subclass; JSON true is not a number
            out.add(path, f"must be {_TYPE_NAMES[kind]}, not {_json_type(value)}")
            ok = False
            continue
        checked: Any = value
        problem = _text_ok(checked) if kind is str else _int_ok(checked)
        for check in checks:
            if problem is not None:
                break
            problem = check(value)
        if problem is not None:
            out.add(path, problem)
            ok = False
            continue
        values[name] = value
    return values if ok else None


def _int_ok(value: int) -> str | None:
    return None if -INT64_MAX - 1 <= value <= INT64_MAX else "out of the 64-bit integer range"


def _object(
    doc: Mapping[str, Any], name: str, spec: _Spec, out: _Collector
) -> dict[str, Any] | None:
    if name not in doc:
        out.add(name, "is required")
        return None
    value = doc[name]
    if not isinstance(value, dict):
        out.add(name, f"must be an object, not {_json_type(value)}")
        return None
    return _section(value, spec, f"{name}.", out)


def parse_timestamp(value: str) -> datetime | None:
    """``value`` as an aware ``datetime`` if it is an RFC 3339 timestamp with a zone, else None."""
    if not _RFC3339_RE.fullmatch(value):
        return None
    text = value.replace("t", "T").replace(" ", "T").replace("z", "Z")
    head, sep, rest = text.partition(".")
    if sep:  # Python takes at most 6 fraction digits; keep the offset after the digits
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None  # guaranteed by the regex above
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    try:  # the instant must exist in UTC too (0001-01-01T00:00:00+01:00 does not)
        parsed.timestamp()
    except (OverflowError, ValueError):
        return None
    return parsed


def validate_document(doc: Mapping[str, Any]) -> Order | Rejection:
    """Validate a decoded JSON object; unknown fields are ignored."""
    out = _Collector()
    top = _section(doc, _ORDER, "", out)
    delivery = _object(doc, "delivery", _DELIVERY, out)
    payment = _object(doc, "payment", _PAYMENT, out)

    items: list[dict[str, Any]] | None = None
    raw_items = doc.get("items")
    if "items" not in doc:
        out.add("items", "is required")
    elif not isinstance(raw_items, list):
        out.add("items", f"must be an array, not {_json_type(raw_items)}")
    elif not raw_items:
        out.add("items", "must hold at least one item")
    elif len(raw_items) > MAX_ITEMS:
        out.add("items", f"must hold at most {MAX_ITEMS} items")
    else:
        items = []
        for index, raw in enumerate(raw_items):
            if not isinstance(raw, dict):
                out.add(f"items.{index}", f"must be an object, not {_json_type(raw)}")
                items = None
                continue
            checked = _section(raw, _ITEM, f"items.{index}.", out)
            if checked is None or items is None:
                items = None
                continue
            items.append(checked)

    created_at = None
    if top is not None:
        created_at = parse_timestamp(top["date_created"])
        if created_at is None:
            out.add("date_created", "must be an RFC 3339 timestamp with a time zone")

    # Consistency rules, checked wherever the fields they relate are individually valid.
    if top is not None and items is not None:
        for index, item in enumerate(items):
            if item["track_number"] != top["track_number"]:
                out.add(f"items.{index}.track_number", "must equal the order's track_number")
    if payment is not None and items is not None:
        total = sum(item["total_price"] for item in items)
        if payment["goods_total"] != total:
            out.add(
                "payment.goods_total",
                f"must equal the sum of the items' total_price ({total})",
            )
    if payment is not None:
        expected = payment["goods_total"] + payment["delivery_cost"] + payment["custom_fee"]
        if payment["amount"] != expected:
            out.add(
                "payment.amount",
                f"must equal goods_total + delivery_cost + custom_fee ({expected})",
            )
        elif expected > INT64_MAX:
            out.add("payment.amount", "out of the 64-bit integer range")

    if out.errors or top is None or delivery is None or payment is None or items is None:
        return Rejection(reason=INVALID_ORDER, errors=tuple(out.errors))
    assert created_at is not None  # no errors means date_created parsed
    return Order(
        **top,
        delivery=Delivery(**delivery),
        payment=Payment(**payment),
        items=tuple(Item(**item) for item in items),
        created_at=created_at,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_order(data: bytes) -> Order | Rejection:
    """Decode and validate one message. Never raises."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(
            reason=NOT_UTF8,
            errors=(FieldError(field="", error=f"byte {exc.start} is not valid UTF-8"),),
        )
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return Rejection(
            reason=MALFORMED_JSON, errors=(FieldError(field="", error=str(exc)[:200]),)
        )
    if not isinstance(doc, dict):
        return Rejection(
            reason=NOT_AN_OBJECT,
            errors=(FieldError(field="", error=f"must be an object, not {_json_type(doc)}"),),
        )
    return validate_document(doc)
