"""The order repository port: idempotent batch writes and reads of ready-made JSON documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from core.orders.model import Order
from core.ports.bus import OutgoingMessage


@attrs.frozen(kw_only=True, slots=True)
class AddResult:
    """What ``add_many`` did: ``inserted`` orders were new; ``duplicates`` were already stored
    (or repeated within the batch) and left untouched."""

    inserted: int
    duplicates: int


class OrderRepository(Protocol):
    """Orders are immutable: the first write of an ``order_uid`` wins forever."""

    async def add_many(self, orders: Sequence[Order]) -> AddResult:
        """Store ``orders`` atomically: when this returns, every one of them is durable (newly
        inserted or already there); when it raises ``StorageError``, none of this call's
        inserts is. An order whose ``order_uid`` exists already, or appeared earlier in the same
        batch, is a counted no-op (the stored one is not changed). ``inserted + duplicates ==
        len(orders)``."""
        ...

    async def get(self, order_uid: str) -> bytes | None:
        """The stored order as a UTF-8 JSON document (``Order.to_document`` shape), or ``None``
        if no such order exists. Raises ``StorageError`` if the store is unreachable."""
        ...

    async def newest(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` orders as ``(order_uid, document)``, newest ``date_created`` first
        (ties by ``order_uid``), read in one round trip. ``limit`` 0 gives ``[]``."""
        ...

    async def count(self) -> int:
        """How many orders are stored."""
        ...


class DeadLetterStore(Protocol):
    """The last resort for dead letters the broker refuses even in their bounded form."""

    async def keep(self, topic: str, letters: Sequence[OutgoingMessage]) -> int:
        """Store ``letters`` (meant for ``topic``) durably, idempotent by ``key``: a letter
        whose key is kept already is not stored again. Returns how many were new. Raises
        ``StorageError`` if the store is unreachable; then none of this call's are kept."""
        ...

    async def count(self) -> int:
        """How many dead letters are kept."""
        ...
