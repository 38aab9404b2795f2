"""The order repository on PostgreSQL (psycopg 3, async pool).

A batch is one transaction of four statements whatever its size: each table gets one
multi-row ``INSERT ... SELECT FROM unnest(arrays)``. ``orders`` goes first with
``ON CONFLICT (order_uid) DO NOTHING RETURNING order_uid``, and the child rows are written only
for the orders that statement inserted, so a duplicate is a counted no-op. Documents are built
by Postgres (the ``order_documents`` view: ``json_build_object``/``json_agg``) and returned as
the bytes the server sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.errors import StorageError
from core.orders.model import Order
from core.ports.orders import AddResult

_INSERT_ORDERS = """
INSERT INTO orders (order_uid, track_number, entry, locale, internal_signature, customer_id,
                    delivery_service, shardkey, sm_id, date_created, date_created_text, oof_shard)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::text[], %s::bigint[], %s::timestamptz[], %s::text[],
                     %s::text[])
ON CONFLICT (order_uid) DO NOTHING
RETURNING order_uid
"""

_INSERT_DELIVERIES = """
INSERT INTO deliveries (order_uid, name, phone, zip, city, address, region, email)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::text[])
"""

_INSERT_PAYMENTS = """
INSERT INTO payments (order_uid, transaction, request_id, currency, provider, amount,
                      payment_dt, bank, delivery_cost, goods_total, custom_fee)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::bigint[],
                     %s::bigint[])
"""

_INSERT_ITEMS = """
INSERT INTO items (order_uid, position, chrt_id, track_number, price, rid, name, sale, size,
                   total_price, nm_id, brand, status)
SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::text[], %s::bigint[], %s::text[],
                     %s::text[], %s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],
                     %s::bigint[])
"""

_GET = "SELECT document::text FROM order_documents WHERE order_uid = %s"

_NEWEST = """
SELECT order_uid, document::text FROM order_documents
ORDER BY date_created DESC, order_uid
LIMIT %s
"""


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]


class PgOrderRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def add_many(self, orders: Sequence[Order]) -> AddResult:
        unique: dict[str, Order] = {}
        for order in orders:
            unique.setdefault(order.order_uid, order)  # the first one in the batch wins
        if not unique:
            return AddResult(inserted=0, duplicates=len(orders))
        batch = list(unique.values())
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    _INSERT_ORDERS,
                    _columns(
                        [
                            (
                                o.order_uid,
                                o.track_number,
                                o.entry,
                                o.locale,
                                o.internal_signature,
                                o.customer_id,
                                o.delivery_service,
                                o.shardkey,
                                o.sm_id,
                                o.created_at,
                                o.date_created,
                                o.oof_shard,
                            )
                            for o in batch
                        ],
                        12,
                    ),
                )
                inserted = {row[0] for row in await cur.fetchall()}
                new = [o for o in batch if o.order_uid in inserted]
                if new:
                    await self._insert_children(conn, new)
        except psycopg.Error as exc:
            raise StorageError(f"storing {len(batch)} orders failed: {exc}") from exc
        return AddResult(inserted=len(inserted), duplicates=len(orders) - len(inserted))

    @staticmethod
    async def _insert_children(conn: psycopg.AsyncConnection[object], new: list[Order]) -> None:
        deliveries = [
            (o.order_uid, d.name, d.phone, d.zip, d.city, d.address, d.region, d.email)
            for o in new
            for d in (o.delivery,)
        ]
        payments = [
            (
                o.order_uid,
                p.transaction,
                p.request_id,
                p.currency,
                p.provider,
                p.amount,
                p.payment_dt,
                p.bank,
                p.delivery_cost,
                p.goods_total,
                p.custom_fee,
            )
            for o in new
            for p in (o.payment,)
        ]
        items = [
            (
                o.order_uid,
                position,
                i.chrt_id,
                i.track_number,
                i.price,
                i.rid,
                i.name,
                i.sale,
                i.size,
                i.total_price,
                i.nm_id,
                i.brand,
                i.status,
            )
            for o in new
            for position, i in enumerate(o.items)
        ]
        await conn.execute(_INSERT_DELIVERIES, _columns(deliveries, 8))
        await conn.execute(_INSERT_PAYMENTS, _columns(payments, 11))
        await conn.execute(_INSERT_ITEMS, _columns(items, 13))

    async def _read(self, query: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Run a read-only query. A pooled connection the server closed meanwhile (a restart)
        fails once; reads are safe to repeat, so one retry on a fresh connection hides it."""
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(query, params)
                    return await cur.fetchall()
            except psycopg.OperationalError as exc:
                if attempt == 2 or isinstance(exc, PoolTimeout):
                    raise StorageError(f"reading orders failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"reading orders failed: {exc}") from exc
        raise AssertionError("unreachable")

    async def get(self, order_uid: str) -> bytes | None:
        rows = await self._read(_GET, (order_uid,))
        return str(rows[0][0]).encode() if rows else None

    async def newest(self, limit: int) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []
        rows = await self._read(_NEWEST, (limit,))
        return [(str(uid), str(doc).encode()) for uid, doc in rows]

    async def count(self) -> int:
        rows = await self._read("SELECT count(*) FROM orders", ())
        return int(rows[0][0])
