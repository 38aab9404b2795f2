"""The order, as the public message format (the task's ``model.json``) describes it.

Orders are immutable value objects. ``to_document`` gives back the message shape with the known
fields only, in the order of ``model.json``; that document is what storage keeps and what
``GET /order/{order_uid}`` returns.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import attrs

# The field patterns of an order, each written once: the reference parser
# (``core.orders.parsing``), the fast one (``adapters.msgspec_orders``) and the HTTP schema use
# these. Match them with ``fullmatch``.

#: A well-formed order id: 1..64 characters of ``[A-Za-z0-9_-]``. The same rule applies to
#: incoming messages and to the ``GET /order/{order_uid}`` path parameter.
ORDER_UID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: ``ORDER_UID_RE`` anchored, for OpenAPI / JSON Schema ``pattern`` (which searches).
ORDER_UID_PATTERN = f"^{ORDER_UID_RE.pattern}$"
#: ``delivery.phone``: ``+`` and 7..15 digits.
PHONE_RE = re.compile(r"\+[0-9]{7,15}")
#: ``delivery.email``: ``local@domain.tld``, no spaces, one ``@``, a dot in the domain.
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
#: ``payment.currency``: three capital letters (ISO 4217).
CURRENCY_RE = re.compile(r"[A-Z]{3}")


def is_well_formed_uid(value: str) -> bool:
    return ORDER_UID_RE.fullmatch(value) is not None


@attrs.frozen(kw_only=True, slots=True)
class Delivery:
    name: str
    phone: str
    zip: str
    city: str
    address: str
    region: str
    email: str


@attrs.frozen(kw_only=True, slots=True)
class Payment:
    transaction: str
    request_id: str
    currency: str
    provider: str
    amount: int
    payment_dt: int
    bank: str
    delivery_cost: int
    goods_total: int
    custom_fee: int


@attrs.frozen(kw_only=True, slots=True)
class Item:
    chrt_id: int
    track_number: str
    price: int
    rid: str
    name: str
    sale: int
    size: str
    total_price: int
    nm_id: int
    brand: str
    status: int


@attrs.frozen(kw_only=True, slots=True)
class Order:
    order_uid: str
    track_number: str
    entry: str
    delivery: Delivery
    payment: Payment
    items: tuple[Item, ...]
    locale: str
    internal_signature: str
    customer_id: str
    delivery_service: str
    shardkey: str
    sm_id: int
    oof_shard: str
    #: The timestamp exactly as the producer wrote it (RFC 3339); kept verbatim so the stored
    #: document round-trips unchanged.
    date_created: str
    #: ``date_created`` parsed, timezone-aware; storage orders and indexes by it.
    created_at: datetime = attrs.field(eq=False)

    def to_document(self) -> dict[str, Any]:
        """The message shape with the known fields, in ``model.json`` order."""
        return {
            "order_uid": self.order_uid,
            "track_number": self.track_number,
            "entry": self.entry,
            "delivery": attrs.asdict(self.delivery),
            "payment": attrs.asdict(self.payment),
            "items": [attrs.asdict(item) for item in self.items],
            "locale": self.locale,
            "internal_signature": self.internal_signature,
            "customer_id": self.customer_id,
            "delivery_service": self.delivery_service,
            "shardkey": self.shardkey,
            "sm_id": self.sm_id,
            "date_created": self.date_created,
            "oof_shard": self.oof_shard,
        }


def order_field_names() -> tuple[str, ...]:
    return tuple(f.name for f in attrs.fields(Order) if f.name != "created_at")
