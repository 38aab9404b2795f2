"""The order repository port: idempotent batch writes and reads of ready-made JSON documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import attrs

from core.orders.model import Order
from core.ports.bus import OutgoingMessage


@attrs.frozen(kw_only=True, slots=True)
class AddResult:
    """What ``add_many`` did: ``inserted`` orders were new; ``duplicates`` were already stored
    (or repeated within the batch) and left untouched."""

    inserted: int
    duplicates: int


@attrs.frozen(kw_only=True, slots=True)
class OrderSummary:
    """One line of the list of recent orders: what tells an order apart at a glance."""

    order_uid: str
    date_created: str
    """As the producer wrote it (RFC 3339)."""
    track_number: str
    customer_id: str
    name: str
    """The delivery's recipient."""
    city: str
    amount: int
    currency: str
    items: int


#: The most summaries one ``recent`` call returns.
MAX_RECENT: Final = 100


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

    async def recent(self, limit: int, before: str | None = None) -> list[OrderSummary]:
        """Up to ``limit`` (at most ``MAX_RECENT``) orders as summaries in ``newest`` order, in
        one round trip. ``before`` is the ``order_uid`` of the previous page's last order
        (keyset paging): the page starts right after it; an unknown ``before`` gives ``[]``."""
        ...

    async def count(self) -> int:
        """How many orders are stored."""
        ...

    async def ping(self) -> None:
        """Return if the repository answers (one trivial round trip), else raise
        ``StorageError``."""
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
