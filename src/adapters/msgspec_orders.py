"""A fast order parser on msgspec: the same results as ``core.orders.parsing.parse_order``.

msgspec decodes a message straight into typed structs, checking JSON types, integer ranges,
lengths and patterns in C, at several times the speed of ``json.loads`` plus the reference's
field-by-field checks. Only the valid path is fast: whenever msgspec or a check below refuses a
message, the reference parser runs on it, so a rejection (its reason and the full list of
field errors) is exactly the reference's. The fast path therefore only has to be at least as
strict as the reference; the agreement test (``tests/unit/test_orders_parsing_msgspec.py``)
drives both with the same valid and mutated documents.

Known difference, by design: valid JSON the reference cannot decode because of CPython limits
(an integer of more than 4,300 digits, or nesting deep enough to hit the recursion limit) inside
a field the order does not use is accepted here, as SPEC section 2 asks ("unknown fields are
ignored"); the reference dead-letters it as malformed.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from core.orders.model import (
    CURRENCY_RE,
    EMAIL_RE,
    ORDER_UID_RE,
    PHONE_RE,
    Order,
)
from core.orders.parsing import (
    INT64_MAX,
    MAX_ITEMS,
    MAX_STRING,
    Rejection,
    parse_order,
    parse_timestamp,
)

__all__ = ["parse_order_fast"]

# msgspec checks types, integer ranges and lengths in C; its ``pattern`` check calls back into
# Python's ``re`` once per field, which costs more than the C-level string methods used below.
_Text = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]
_Int = Annotated[int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
_Money = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_Sale = Annotated[int, msgspec.Meta(ge=0, le=100)]

_uid = ORDER_UID_RE.fullmatch
_phone = PHONE_RE.fullmatch
_email = EMAIL_RE.fullmatch
_currency = CURRENCY_RE.fullmatch


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()  # ASCII 0-9 only, and not empty


class _Delivery(msgspec.Struct, gc=False):
    name: _Text
    phone: _Text
    zip: _Text
    city: _Text
    address: _Text
    region: _Text
    email: _Text


class _Payment(msgspec.Struct, gc=False):
    transaction: _Text
    request_id: _Text
    currency: _Text
    provider: _Text
    amount: _Money
    payment_dt: _Money
    bank: _Text
    delivery_cost: _Money
    goods_total: _Money
    custom_fee: _Money


class _Item(msgspec.Struct, gc=False):
    chrt_id: _Int
    track_number: _Text
    price: _Money
    rid: _Text
    name: _Text
    sale: _Sale
    size: _Text
    total_price: _Money
    nm_id: _Int
    brand: _Text
    status: _Int


class _Order(msgspec.Struct, gc=False):
    order_uid: _Text
    track_number: _Text
    entry: _Text
    delivery: _Delivery
    payment: _Payment
    items: Annotated[tuple[_Item, ...], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]
    locale: _Text
    internal_signature: _Text
    customer_id: _Text
    delivery_service: _Text
    shardkey: _Text
    sm_id: _Int
    date_created: _Text
    oof_shard: _Text


_decode = msgspec.json.Decoder(_Order).decode


def _fast(data: bytes) -> Order | None:
    """The order if ``data`` is certainly valid, else None (the reference decides)."""
    if b"\\u0000" in data:  # a NUL character, maybe in a field the reference checks
        return None
    if not data.isascii():
        try:  # msgspec does not check the UTF-8 of fields it skips; the reference does
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        o = _decode(data)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    d, p, track = o.delivery, o.payment, o.track_number
    # str.strip and re's \s agree on what is blank (both use Py_UNICODE_ISSPACE).
    filled = (
        *(track, o.entry, o.locale, o.customer_id, o.delivery_service),
        *(d.name, d.city, d.address, d.region, p.transaction, p.provider, p.bank),
    )
    if not (
        all(map(str.strip, filled))
        and _uid(o.order_uid)
        and _phone(d.phone)
        and _email(d.email)
        and _currency(p.currency)
        and _digits(d.zip)
        and _digits(o.shardkey)
        and _digits(o.oof_shard)
    ):
        return None
    created_at = parse_timestamp(o.date_created)
    if created_at is None:
        return None
    total = 0
    for i in o.items:
        # an item's track_number equals the order's, so it is not blank either
        if i.track_number != track or not (i.rid.strip() and i.name.strip() and i.brand.strip()):
            return None
        if not _digits(i.size):
            return None
        total += i.total_price
    if p.goods_total != total or p.amount != total + p.delivery_cost + p.custom_fee:
        return None
    # The structs have the core classes' field names: msgspec builds the attrs objects in C,
    # faster than their ``__init__`` (frozen attrs set each field through object.__setattr__).
    fields = {**msgspec.structs.asdict(o), "created_at": created_at}
    return msgspec.convert(fields, Order, from_attributes=True)


def parse_order_fast(data: bytes) -> Order | Rejection:
    """``core.orders.parsing.parse_order``, faster on valid messages. Never raises."""
    order = _fast(data)
    return order if order is not None else parse_order(data)
