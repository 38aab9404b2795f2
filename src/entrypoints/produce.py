"""``hexmarket produce-orders``: realistic demo orders, and on request a share of corrupted ones,
published to the configured orders broker.

Valid orders are varied and self-consistent (items share the order's track number,
``total_price`` follows ``price`` and ``sale``, ``goods_total`` and ``amount`` add up). Corrupted
ones are each derived from a valid order with one kind of damage (``CORRUPTIONS``), so the
dead-letter topic shows every rejection reason.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from core import tracing
from core.orders.documents import order_document, sale_price
from core.ports.bus import EventPublisher, OutgoingMessage
from entrypoints.container import Container, close_container, resolve

_FIRST = ["Anna", "Ivan", "Maria", "Dmitry", "Olga", "Sergey", "Test", "Noa", "Yael", "Lior"]
_LAST = ["Ivanova", "Petrov", "Smirnova", "Kuznetsov", "Testov", "Cohen", "Levi", "Mizrahi"]
_CITIES = [
    ("Moscow", "Moskva", "Tverskaya"),
    ("Kazan", "Tatarstan", "Baumana"),
    ("Kiryat Mozkin", "Kraiot", "Ploshad Mira"),
    ("Novosibirsk", "Novosibirskaya", "Lenina"),
    ("Haifa", "Haifa District", "Herzl"),
]
_PRODUCTS = [
    ("Mascaras", "Vivienne Sabo"),
    ("Lipstick", "Maybelline"),
    ("T-shirt", "Gloria Jeans"),
    ("Sneakers", "Nike"),
    ("Phone case", "Baseus"),
    ("Tea, 100 g", "Greenfield"),
    ("Notebook A5", "Erich Krause"),
    ("Headphones", "JBL"),
]
_MAIL = ["gmail.com", "yandex.ru", "mail.ru", "outlook.com"]
_BANKS = ["alpha", "sber", "tinkoff", "vtb"]
_SERVICES = ["meest", "cdek", "boxberry", "dhl"]
_CURRENCIES = ["USD", "RUB", "EUR", "ILS"]


def _token(
    rng: random.Random, size: int, alphabet: str = string.ascii_lowercase + string.digits
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def make_order(rng: random.Random, now: datetime | None = None) -> dict[str, Any]:
    """One valid, self-consistent order document (``core.orders.documents.order_document``)."""
    uid = _token(rng, 19)
    track = "WB" + _token(rng, 12, string.ascii_uppercase)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, region, street = rng.choice(_CITIES)
    items: list[dict[str, Any]] = []
    for _ in range(rng.choices([1, 2, 3, 4, 5], weights=[40, 25, 15, 12, 8])[0]):
        name, brand = rng.choice(_PRODUCTS)
        price = rng.randint(50, 20_000)
        sale = rng.choice([0, 0, 5, 10, 15, 20, 25, 30, 50, 70])
        items.append(
            {
                "chrt_id": rng.randint(1_000_000, 99_999_999),
                "price": price,
                "rid": _token(rng, 21),
                "name": name,
                "sale": sale,
                "size": str(rng.choice([0, 0, 38, 40, 42, 44, 46])),
                "total_price": sale_price(price, sale),
                "nm_id": rng.randint(100_000, 9_999_999),
                "brand": brand,
                "status": rng.choice([200, 202, 202, 300]),
            }
        )
    delivery_cost = rng.choice([0, 0, 300, 500, 1500])
    custom_fee = rng.choice([0, 0, 0, 100])
    created = (now or datetime.now(UTC)) - timedelta(seconds=rng.randint(0, 86_400))
    return order_document(
        order_uid=uid,
        track_number=track,
        entry="WBIL",
        delivery={
            "name": f"{first} {last}",
            "phone": "+" + str(rng.choice([7, 972, 1])) + _token(rng, 10, string.digits),
            "zip": _token(rng, 6, string.digits),
            "city": city,
            "address": f"{street} {rng.randint(1, 120)}",
            "region": region,
            "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{rng.choice(_MAIL)}",
        },
        payment={
            "transaction": uid,
            "request_id": rng.choice(["", "", _token(rng, 8)]),
            "currency": rng.choice(_CURRENCIES),
            "provider": "wbpay",
            "payment_dt": int(created.timestamp()),
            "bank": rng.choice(_BANKS),
            "delivery_cost": delivery_cost,
            "custom_fee": custom_fee,
        },
        items=items,
        locale=rng.choice(["en", "ru"]),
        internal_signature="",
        customer_id=_token(rng, 6),
        delivery_service=rng.choice(_SERVICES),
        shardkey=str(rng.randint(0, 9)),
        sm_id=rng.randint(1, 100),
        date_created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        oof_shard=str(rng.randint(1, 2)),
    )


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _broken_json(rng: random.Random, doc: dict[str, Any]) -> bytes:
    data = _encode(doc)
    return data[: rng.randint(1, len(data) - 1)]


def _wrong_types(rng: random.Random, doc: dict[str, Any]) -> bytes:
    change = rng.choice(["zip", "amount", "sm_id", "items"])
    if change == "zip":
        doc["delivery"]["zip"] = int(doc["delivery"]["zip"])
    elif change == "amount":
        doc["payment"]["amount"] = str(doc["payment"]["amount"])
    elif change == "sm_id":
        doc["sm_id"] = float(doc["sm_id"]) + 0.5
    else:
        doc["items"] = doc["items"][0]
    return _encode(doc)


def _missing_field(rng: random.Random, doc: dict[str, Any]) -> bytes:
    where = rng.choice(["order", "delivery", "payment", "item"])
    target = {
        "order": doc,
        "delivery": doc["delivery"],
        "payment": doc["payment"],
        "item": doc["items"][0],
    }[where]
    del target[rng.choice(sorted(target))]
    return _encode(doc)


def _inconsistent_totals(rng: random.Random, doc: dict[str, Any]) -> bytes:
    if rng.random() < 0.5:
        doc["payment"]["amount"] += rng.randint(1, 100)
    else:
        doc["payment"]["goods_total"] += rng.randint(1, 100)
        doc["payment"]["amount"] = (
            doc["payment"]["goods_total"]
            + doc["payment"]["delivery_cost"]
            + doc["payment"]["custom_fee"]
        )
    return _encode(doc)


def _not_utf8(rng: random.Random, doc: dict[str, Any]) -> bytes:
    data = _encode(doc)
    at = rng.randint(0, len(data) - 1)
    return data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + data[at:]


CORRUPTIONS: dict[str, Callable[[random.Random, dict[str, Any]], bytes]] = {
    "broken_json": _broken_json,
    "wrong_types": _wrong_types,
    "missing_field": _missing_field,
    "inconsistent_totals": _inconsistent_totals,
    "not_utf8": _not_utf8,
}


@attrs.define(kw_only=True)
class ProduceReport:
    valid: int = 0
    invalid: Counter[str] = attrs.field(factory=Counter)
    uids: list[str] = attrs.field(factory=list)

    @property
    def total(self) -> int:
        return self.valid + sum(self.invalid.values())


def make_messages(
    count: int, invalid_share: float, rng: random.Random
) -> tuple[list[OutgoingMessage], ProduceReport]:
    """``count`` messages, about ``invalid_share`` of them corrupted (every kind in turn)."""
    report = ProduceReport()
    messages = []
    kinds = list(CORRUPTIONS)
    for _ in range(count):
        doc = make_order(rng)
        uid = doc["order_uid"]
        if rng.random() < invalid_share:
            kind = kinds[sum(report.invalid.values()) % len(kinds)]
            data = CORRUPTIONS[kind](rng, doc)
            report.invalid[kind] += 1
        else:
            data = _encode(doc)
            report.valid += 1
            report.uids.append(uid)
        messages.append(OutgoingMessage(data=data, key=uid))
    return messages, report


async def produce_orders(
    publisher: EventPublisher,
    topic: str,
    *,
    count: int,
    invalid_share: float = 0.0,
    rate: float | None = None,
    seed: int | None = None,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ProduceReport:
    """Publish ``count`` orders to ``topic``; ``rate`` caps messages per second (``None``: as
    fast as the broker acknowledges). ``progress`` is called with each chunk's size."""
    if not 0.0 <= invalid_share <= 1.0:
        raise ValueError("invalid_share must be between 0 and 1")
    messages, report = make_messages(count, invalid_share, random.Random(seed))
    if rate is not None:
        chunk = max(1, min(chunk, int(rate / 10) or 1))
    started = time.monotonic()
    for offset in range(0, len(messages), chunk):
        part = messages[offset : offset + chunk]
        if rate is not None:  # pacing, not synchronisation: hold the configured rate
            due = started + offset / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await _publish_traced(publisher, topic, part)
        if progress is not None:
            progress(len(part))
    return report


async def _publish_traced(
    publisher: EventPublisher, topic: str, part: list[OutgoingMessage]
) -> None:
    """Publish one chunk; when tracing, under a ``produce`` span whose context every message
    of the chunk carries (``traceparent`` header), so the consumer's batch joins its trace."""
    with tracing.span(
        f"produce {topic}",
        kind="producer",
        attributes={
            "messaging.destination.name": topic,
            "messaging.batch.message_count": len(part),
        },
    ) as span:
        context = span.headers()
        if context:
            part = [attrs.evolve(m, headers={**m.headers, **context}) for m in part]
        await publisher.publish(topic, part)


def destination(settings: Any) -> str:
    """Where the orders go, as a person reads it: ``NATS subject orders``, ``Kafka topic x``."""
    if settings.orders_broker == "kafka":
        return f"Kafka topic {settings.orders_topic}"
    if settings.orders_broker == "nats":
        return f"NATS subject {settings.orders_topic}"
    return f"{settings.orders_broker} topic {settings.orders_topic}"


async def run_produce(
    settings: Any,
    *,
    count: int,
    invalid_share: float = 0.0,
    rate: float | None = None,
    seed: int | None = None,
    show_progress: bool = True,
) -> ProduceReport:
    """Publish to the broker the settings name (``orders_broker``, ``orders_topic``), with a
    progress bar on the terminal."""
    # deferred: rich loads only for the progress bar of this command
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    container = Container(settings=settings)
    bus: EventPublisher = await resolve(container.orders_bus())
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, disable=not show_progress, transient=False) as bar:
            task = bar.add_task(f"orders to {destination(settings)}", total=count)
            return await produce_orders(
                bus,
                settings.orders_topic,
                count=count,
                invalid_share=invalid_share,
                rate=rate,
                seed=seed,
                progress=lambda n: bar.advance(task, n),
            )
    finally:
        await close_container(container)  # the bus is the container's
