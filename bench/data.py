"""Deterministic, valid demo data: orders in the public message format (``docs/model.json``),
built by the one order factory (``core.orders.documents.order_document``)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from core.orders.documents import order_document, sale_price

_BRANDS = ("Vivienne Sabo", "Nike", "Bosch", "Lego", "Tefal", "Xiaomi", "Zara")
_GOODS = ("Mascaras", "Sneakers", "Drill", "Bricks", "Pan", "Phone", "Jacket", "Lamp")
_CITIES = ("Kiryat Mozkin", "Moscow", "Kazan", "Tel Aviv", "Yerevan", "Almaty")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def order(seq: int, *, run: str = "b") -> dict[str, Any]:
    """Order number ``seq`` of a data set: valid per SPEC §2, 1-3 items, realistic sizes.

    ``run`` prefixes the uid so separate data sets never collide.
    """
    rng = random.Random(seq)
    uid = f"{run}{seq:012d}"
    items: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 3)):
        price = rng.randint(100, 20_000)
        sale = rng.randint(0, 60)
        items.append(
            {
                "chrt_id": rng.randint(1_000_000, 9_999_999),
                "price": price,
                "rid": f"{rng.getrandbits(80):020x}",
                "name": rng.choice(_GOODS),
                "sale": sale,
                "size": str(rng.randint(0, 56)),
                "total_price": sale_price(price, sale),
                "nm_id": rng.randint(1_000_000, 9_999_999),
                "brand": rng.choice(_BRANDS),
                "status": 202,
            }
        )
    delivery_cost = rng.choice((0, 500, 1500))
    created = _EPOCH + timedelta(seconds=seq)
    return order_document(
        order_uid=uid,
        track_number=f"WBIL{seq:010d}",
        entry="WBIL",
        delivery={
            "name": "Test Testov",
            "phone": f"+972{rng.randint(1_000_000, 9_999_999)}",
            "zip": str(rng.randint(100_000, 999_999)),
            "city": rng.choice(_CITIES),
            "address": f"Ploshad Mira {rng.randint(1, 200)}",
            "region": "Kraiot",
            "email": f"user{seq}@example.com",
        },
        payment={
            "transaction": uid,
            "request_id": "",
            "currency": "USD",
            "provider": "wbpay",
            "payment_dt": int(created.timestamp()),
            "bank": "alpha",
            "delivery_cost": delivery_cost,
            "custom_fee": 0,
        },
        items=items,
        locale="en",
        internal_signature="",
        customer_id=f"customer{seq % 5000}",
        delivery_service="meest",
        shardkey=str(seq % 10),
        sm_id=99,
        date_created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        oof_shard="1",
    )


def order_messages(count: int, *, run: str = "b") -> list[bytes]:
    """``count`` orders as the JSON bytes a producer would publish."""
    return [json.dumps(order(i, run=run), separators=(",", ":")).encode() for i in range(count)]
