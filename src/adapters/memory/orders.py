"""An in-process order repository: the reference model of the order repository contract, and
the store of the single-process demo. ``available = False`` simulates an outage."""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.errors import StorageError
from core.orders.model import Order
from core.ports.orders import AddResult


def serialize(order: Order) -> bytes:
    return json.dumps(order.to_document(), ensure_ascii=False, separators=(",", ":")).encode()


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

    async def newest(self, limit: int) -> list[tuple[str, bytes]]:
        self._check()
        self.reads += 1
        by_uid = sorted(self._orders.values(), key=lambda o: o.order_uid)
        ranked = sorted(by_uid, key=lambda o: o.created_at, reverse=True)  # stable: ties by uid
        return [(o.order_uid, self._documents[o.order_uid]) for o in ranked[: max(limit, 0)]]

    async def count(self) -> int:
        self._check()
        return len(self._orders)
