"""An in-process order repository: the reference model of the order repository contract, and
the store of the single-process demo. ``available = False`` simulates an outage."""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.errors import StorageError
from core.orders.model import Order
from core.ports.orders import MAX_RECENT, AddResult, OrderSummary


def serialize(order: Order) -> bytes:
    return json.dumps(order.to_document(), ensure_ascii=False, separators=(",", ":")).encode()


def summary(order: Order) -> OrderSummary:
    return OrderSummary(
        order_uid=order.order_uid,
        date_created=order.date_created,
        track_number=order.track_number,
        customer_id=order.customer_id,
        name=order.delivery.name,
        city=order.delivery.city,
        amount=order.payment.amount,
        currency=order.payment.currency,
        items=len(order.items),
    )


class MemoryOrderRepository:
    def __init__(self) -> None:
        self.available = True
        self.reads = 0
        self._orders: dict[str, Order] = {}
        self._documents: dict[str, bytes] = {}

    def _check(self) -> None:
        if not self.available:
            raise StorageError("in-memory order store is marked unavailable")

    async def add_many(self, orders: Sequence[Order]) -> AddResult:
        self._check()
        inserted = 0
        for order in orders:
            if order.order_uid in self._orders:
                continue
            self._orders[order.order_uid] = order
            self._documents[order.order_uid] = serialize(order)
            inserted += 1
        return AddResult(inserted=inserted, duplicates=len(orders) - inserted)

    async def get(self, order_uid: str) -> bytes | None:
        self._check()
        self.reads += 1
        return self._documents.get(order_uid)

    def _ranked(self) -> list[Order]:
        by_uid = sorted(self._orders.values(), key=lambda o: o.order_uid)
        return sorted(by_uid, key=lambda o: o.created_at, reverse=True)  # stable: ties by uid

    async def newest(self, limit: int) -> list[tuple[str, bytes]]:
        self._check()
        self.reads += 1
        ranked = self._ranked()
        return [(o.order_uid, self._documents[o.order_uid]) for o in ranked[: max(limit, 0)]]

    async def recent(self, limit: int, before: str | None = None) -> list[OrderSummary]:
        self._check()
        self.reads += 1
        ranked = self._ranked()
        if before is not None:
            if before not in self._orders:
                return []
            ranked = ranked[[o.order_uid for o in ranked].index(before) + 1 :]
        return [summary(o) for o in ranked[: max(0, min(limit, MAX_RECENT))]]

    async def count(self) -> int:
        self._check()
        return len(self._orders)

    async def ping(self) -> None:
        self._check()
