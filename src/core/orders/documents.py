"""The one factory of order documents (the public message format, ``docs/model.json``).

``order_document`` lays a document out in ``model.json`` order and derives what makes it
self-consistent: every item carries the order's track number, ``goods_total`` is the sum of the
items' ``total_price`` and ``amount`` is ``goods_total + delivery_cost + custom_fee``. The
callers only choose the values:

- ``hexmarket produce-orders`` (``entrypoints.produce.make_order``): varied demo orders;
- the benchmarks (``bench/data.py``): a deterministic data set, order number ``seq``;
- the contract suites (``core.contracts.orders``): hypothesis strategies and fixed examples.

With valid values (see ``docs/orders.md``) the document passes ``validate_document``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from core.orders.model import Delivery, Item, Payment

DELIVERY_FIELDS = tuple(f.name for f in attrs.fields(Delivery))
PAYMENT_FIELDS = tuple(f.name for f in attrs.fields(Payment))
ITEM_FIELDS = tuple(f.name for f in attrs.fields(Item))

#: The payment fields ``order_document`` derives from the items (not given by the caller).
DERIVED_PAYMENT_FIELDS = frozenset({"goods_total", "amount"})


def sale_price(price: int, sale: int) -> int:
    """An item's ``total_price``: ``price`` less ``sale`` percent, rounded down."""
    return price * (100 - sale) // 100


def order_document(
    *,
    order_uid: str,
    track_number: str,
    entry: str,
    delivery: Mapping[str, Any],
    payment: Mapping[str, Any],
    items: Iterable[Mapping[str, Any]],
    locale: str,
    internal_signature: str,
    customer_id: str,
    delivery_service: str,
    shardkey: str,
    sm_id: int,
    date_created: str,
    oof_shard: str,
) -> dict[str, Any]:
    """A JSON-ready order document, keys in ``model.json`` order.

    ``delivery`` has every delivery field; ``payment`` every payment field but ``goods_total``
    and ``amount`` (derived); each of ``items`` every item field but ``track_number`` (the
    order's). A missing field is a ``KeyError``.
    """
    lines: list[dict[str, Any]] = [
        {name: track_number if name == "track_number" else item[name] for name in ITEM_FIELDS}
        for item in items
    ]
    goods_total = sum(line["total_price"] for line in lines)
    totals = {
        "goods_total": goods_total,
        "amount": goods_total + payment["delivery_cost"] + payment["custom_fee"],
    }
    return {
        "order_uid": order_uid,
        "track_number": track_number,
        "entry": entry,
        "delivery": {name: delivery[name] for name in DELIVERY_FIELDS},
        "payment": {
            name: totals[name] if name in DERIVED_PAYMENT_FIELDS else payment[name]
            for name in PAYMENT_FIELDS
        },
        "items": lines,
        "locale": locale,
        "internal_signature": internal_signature,
        "customer_id": customer_id,
        "delivery_service": delivery_service,
        "shardkey": shardkey,
        "sm_id": sm_id,
        "date_created": date_created,
        "oof_shard": oof_shard,
    }
