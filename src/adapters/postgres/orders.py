"""The order repository on PostgreSQL (psycopg 3, async pool).

A batch is stored by one transaction whatever its size, written with ``COPY`` (rows formatted
by psycopg's C code; an ``INSERT ... unnest(arrays)`` builds its arrays in Python, which cost
more than the database's work). The batch is first ``COPY``-ed straight into the four tables.
If one of its orders is stored already (a redelivery, or a concurrent consumer), the primary
key refuses it: that transaction rolls back and a second one takes the careful way, ``COPY``
into session-local staging tables (``TEMP ... ON COMMIT DELETE ROWS``), then one
statement moves it: ``orders`` with ``ON CONFLICT (order_uid) DO NOTHING``, and the child rows
only of the orders that statement inserted (data-modifying CTEs). So a duplicate is a counted
no-op and the first write wins, and a batch without duplicates costs what a bare ``COPY`` does.
Documents are built by Postgres (the ``order_documents`` view: ``json_build_object``/
``json_agg``) and compacted once, when read (``json_build_object`` writes ``"key" : value``,
~15 % of a document's bytes); the bytes are then cached and served as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import BaseRowFactory, Row, class_row, scalar_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from adapters.postgres.errors import translate_errors
from core import tracing
from core.orders.model import Order
from core.ports.orders import MAX_RECENT, AddResult, OrderSummary

# The columns a batch is COPYed into, in row order (the benchmark ceiling COPYs the same).
ORDER_COLUMNS = (
    "order_uid, track_number, entry, locale, internal_signature, customer_id, "
    "delivery_service, shardkey, sm_id, date_created, date_created_text, oof_shard"
)
DELIVERY_COLUMNS = "order_uid, name, phone, zip, city, address, region, email"
PAYMENT_COLUMNS = (
    "order_uid, transaction, request_id, currency, provider, amount, payment_dt, bank, "
    "delivery_cost, goods_total, custom_fee"
)
ITEM_COLUMNS = (
    "order_uid, position, chrt_id, track_number, price, rid, name, sale, size, total_price, "
    "nm_id, brand, status"
)

# In the transaction that needs them; a rollback drops them, the next fallback re-creates them.
# LIKE copies the columns, types, collations and NOT NULLs.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_orders (LIKE orders INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_deliveries (LIKE deliveries) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_payments (LIKE payments) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_items (LIKE items) ON COMMIT DELETE ROWS;
"""


def _copies(prefix: str) -> tuple[str, str, str, str]:
    return (
        f"COPY {prefix}orders ({ORDER_COLUMNS}) FROM STDIN",
        f"COPY {prefix}deliveries ({DELIVERY_COLUMNS}) FROM STDIN",
        f"COPY {prefix}payments ({PAYMENT_COLUMNS}) FROM STDIN",
        f"COPY {prefix}items ({ITEM_COLUMNS}) FROM STDIN",
    )


_DIRECT = _copies("")
_STAGED = _copies("ingest_")

_MOVE = f"""
WITH new AS (
    INSERT INTO orders ({ORDER_COLUMNS})
    SELECT {ORDER_COLUMNS} FROM ingest_orders
    ON CONFLICT (order_uid) DO NOTHING
    RETURNING order_uid
), d AS (
    INSERT INTO deliveries ({DELIVERY_COLUMNS})
    SELECT {DELIVERY_COLUMNS} FROM ingest_deliveries JOIN new USING (order_uid)
), p AS (
    INSERT INTO payments ({PAYMENT_COLUMNS})
    SELECT {PAYMENT_COLUMNS} FROM ingest_payments JOIN new USING (order_uid)
), i AS (
    INSERT INTO items ({ITEM_COLUMNS})
    SELECT {ITEM_COLUMNS} FROM ingest_items JOIN new USING (order_uid)
)
SELECT count(*) FROM new
"""

_GET = "SELECT document::text FROM order_documents WHERE order_uid = %s"

_NEWEST = """
SELECT order_uid, document::text FROM order_documents
ORDER BY date_created DESC, order_uid
LIMIT %s
"""

# Named as ``OrderSummary``'s fields: psycopg builds one from each row (``class_row``).
_SUMMARY = """
SELECT o.order_uid, o.date_created_text AS date_created, o.track_number, o.customer_id, d.name,
       d.city, p.amount, p.currency,
       (SELECT count(*) FROM items i WHERE i.order_uid = o.order_uid) AS items
"""
_RECENT = (
    _SUMMARY
    + """FROM orders o
JOIN deliveries d ON d.order_uid = o.order_uid
JOIN payments p ON p.order_uid = o.order_uid
ORDER BY o.date_created DESC, o.order_uid
LIMIT %s
"""
)
# Keyset: after the cursor order in (date_created DESC, order_uid) order. The first condition
# bounds the index range scan; an unknown cursor joins nothing, so the page is empty.
_RECENT_BEFORE = (
    "WITH c AS (SELECT date_created, order_uid FROM orders WHERE order_uid = %s)"
    + _SUMMARY
    + """FROM c, orders o
JOIN deliveries d ON d.order_uid = o.order_uid
JOIN payments p ON p.order_uid = o.order_uid
WHERE o.date_created <= c.date_created
  AND (o.date_created < c.date_created OR o.order_uid > c.order_uid)
ORDER BY o.date_created DESC, o.order_uid
LIMIT %s
"""
)


_DB = {"db.system.name": "postgresql"}


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
        with tracing.span(
            "orders insert",
            kind="client",
            attributes={
                "db.system.name": "postgresql",
                "db.operation.name": "COPY",
                "db.operation.batch.size": len(batch),
            },
        ):
            inserted = await self._insert(batch)
        return AddResult(inserted=inserted, duplicates=len(orders) - inserted)

    async def _insert(self, batch: list[Order]) -> int:
        """Store ``batch`` (unique ids) in one transaction; how many were new."""
        async with (
            translate_errors(f"storing {len(batch)} orders"),
            self._pool.connection() as conn,
        ):
            try:
                async with conn.transaction():
                    await _copy(conn, batch, _DIRECT)
                return len(batch)
            except psycopg.errors.UniqueViolation:  # rolled back; now skip the stored ones
                async with conn.transaction():
                    await conn.execute(_STAGING)
                    await _copy(conn, batch, _STAGED)
                    cur = await conn.execute(_MOVE)
                    row = await cur.fetchone()
                return int(row[0]) if row else 0

    async def _read(
        self, query: str, params: tuple[object, ...], rows: BaseRowFactory[Row]
    ) -> list[Row]:
        """Run a read-only query. A pooled connection the server closed meanwhile (a restart)
        fails once; reads are safe to repeat, so one retry on a fresh connection hides it."""
        with tracing.span("orders read", kind="client", attributes=_DB):
            async with translate_errors("reading orders"):
                try:
                    return await self._read_once(query, params, rows)
                except psycopg.OperationalError as exc:
                    if isinstance(exc, PoolTimeout):  # no connection to be had: do not wait twice
                        raise
                    return await self._read_once(query, params, rows)

    async def _read_once(
        self, query: str, params: tuple[object, ...], rows: BaseRowFactory[Row]
    ) -> list[Row]:
        async with self._pool.connection() as conn:
            # One round trip: in a transaction the read would also cost a BEGIN and the pool's
            # COMMIT (a cache miss paid three; measured in make bench).
            await conn.set_autocommit(True)
            try:
                cur = conn.cursor(row_factory=rows)
                await cur.execute(query, params)
                return await cur.fetchall()
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(False)  # the pool's other users expect it

    async def get(self, order_uid: str) -> bytes | None:
        documents = await self._read(_GET, (order_uid,), scalar_row)
        return _compact(documents[0]) if documents else None

    async def newest(self, limit: int) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []
        rows = await self._read(_NEWEST, (limit,), tuple_row)
        return [(str(uid), _compact(doc)) for uid, doc in rows]

    async def recent(self, limit: int, before: str | None = None) -> list[OrderSummary]:
        limit = min(limit, MAX_RECENT)
        if limit <= 0:
            return []
        summaries = class_row(OrderSummary)
        if before is None:
            return await self._read(_RECENT, (limit,), summaries)
        return await self._read(_RECENT_BEFORE, (before, limit), summaries)

    async def count(self) -> int:
        (count,) = await self._read("SELECT count(*) FROM orders", (), scalar_row)
        return int(count)

    async def ping(self) -> None:
        await self._read("SELECT 1", (), scalar_row)


def _compact(document: str) -> bytes:
    """The document without insignificant whitespace; strings and key order untouched."""
    return msgspec.json.format(document.encode(), indent=-1)


async def _copy(
    conn: psycopg.AsyncConnection[Any], batch: Sequence[Order], copies: tuple[str, str, str, str]
) -> None:
    """COPY the batch into the four tables named by ``copies``, one COPY per table."""
    copy_orders, copy_deliveries, copy_payments, copy_items = copies
    cur = conn.cursor()
    async with cur.copy(copy_orders) as copy:
        for o in batch:
            await copy.write_row(
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
            )
    async with cur.copy(copy_deliveries) as copy:
        for o in batch:
            d = o.delivery
            await copy.write_row(
                (o.order_uid, d.name, d.phone, d.zip, d.city, d.address, d.region, d.email)
            )
    async with cur.copy(copy_payments) as copy:
        for o in batch:
            p = o.payment
            await copy.write_row(
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
            )
    async with cur.copy(copy_items) as copy:
        for o in batch:
            for position, i in enumerate(o.items):
                await copy.write_row(
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
                )
