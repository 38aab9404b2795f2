"""The ingest ceiling: psycopg ``COPY`` of orders into the four tables, one transaction per
batch. Also used to load the orders the HTTP figures read."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from adapters.postgres.orders import (
    DELIVERY_COLUMNS,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
)


def rows(
    doc: dict[str, Any],
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]]]:
    uid = doc["order_uid"]
    d = doc["delivery"]
    p = doc["payment"]
    created = datetime.fromisoformat(doc["date_created"].replace("Z", "+00:00"))
    order = (
        uid,
        doc["track_number"],
        doc["entry"],
        doc["locale"],
        doc["internal_signature"],
        doc["customer_id"],
        doc["delivery_service"],
        doc["shardkey"],
        doc["sm_id"],
        created,
        doc["date_created"],
        doc["oof_shard"],
    )
    delivery = (
        uid,
        d["name"],
        d["phone"],
        d["zip"],
        d["city"],
        d["address"],
        d["region"],
        d["email"],
    )
    payment = (
        uid,
        p["transaction"],
        p["request_id"],
        p["currency"],
        p["provider"],
        p["amount"],
        p["payment_dt"],
        p["bank"],
        p["delivery_cost"],
        p["goods_total"],
        p["custom_fee"],
    )
    items = [
        (
            uid,
            n,
            i["chrt_id"],
            i["track_number"],
            i["price"],
            i["rid"],
            i["name"],
            i["sale"],
            i["size"],
            i["total_price"],
            i["nm_id"],
            i["brand"],
            i["status"],
        )
        for n, i in enumerate(doc["items"])
    ]
    return order, delivery, payment, items


def _copy(cur: psycopg.Cursor[Any], table: str, cols: str, data: Sequence[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in data:
            copy.write_row(row)


def load_orders(dsn: str, messages: Sequence[bytes], *, batch: int = 1000) -> float:
    """Parse and COPY ``messages`` in transactions of ``batch`` orders; returns the seconds."""
    began = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for start in range(0, len(messages), batch):
            orders, deliveries, payments, items = [], [], [], []
            for message in messages[start : start + batch]:
                o, d, p, i = rows(json.loads(message))
                orders.append(o)
                deliveries.append(d)
                payments.append(p)
                items.extend(i)
            _copy(cur, "orders", ORDER_COLUMNS, orders)
            _copy(cur, "deliveries", DELIVERY_COLUMNS, deliveries)
            _copy(cur, "payments", PAYMENT_COLUMNS, payments)
            _copy(cur, "items", ITEM_COLUMNS, items)
            conn.commit()
    return time.perf_counter() - began
