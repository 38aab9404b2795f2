"""Dead letters the broker refuses whole: a bounded envelope (payload cut, size and SHA-256
kept), and, when even that is refused, the dead-letter store. The batch never wedges."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from adapters.memory.bus import MemoryEventBus
from adapters.memory.dead_letters import MemoryDeadLetterStore
from adapters.memory.orders import MemoryOrderRepository
from core.errors import MessageRefused
from core.orders.ingest import IngestOrders
from core.ports.bus import Delivery
from tests.unit.test_orders_ingest import DLQ, SAMPLE, FixedClock

LIMIT = 2048


def delivery(data: bytes, offset: int) -> Delivery:
    return Delivery(
        data=data, key=None, source={"topic": "orders", "partition": 0, "offset": offset}
    )


def ingest(bus: MemoryEventBus, store: MemoryDeadLetterStore | None) -> IngestOrders:
    return IngestOrders(
        repository=MemoryOrderRepository(),
        publisher=bus,
        dlq_topic=DLQ,
        clock=FixedClock(),
        dead_letters=store,
        payload_limit=LIMIT,
    )


def letters(bus: MemoryEventBus) -> list[dict[str, Any]]:
    return [json.loads(m) for m in bus.messages(DLQ)]


async def test_a_dead_letter_too_large_whole_goes_out_bounded_with_its_size_and_digest() -> None:
    bus = MemoryEventBus(max_message_bytes=10_000)
    big_text = b"{" + b"x" * 50_000  # malformed JSON, UTF-8
    big_binary = b"\xff" * 30_000  # not UTF-8: base64 in the envelope
    small = SAMPLE[:-10]
    batch = [
        delivery(SAMPLE, 0),
        delivery(big_text, 1),
        delivery(small, 2),
        delivery(big_binary, 3),
    ]

    report = await ingest(bus, MemoryDeadLetterStore()).handle(batch)

    assert (report.inserted, report.dead_lettered, report.truncated, report.kept) == (1, 3, 2, 0)
    by_offset = {letter["source"]["offset"]: letter for letter in letters(bus)}
    assert sorted(by_offset) == [1, 2, 3]
    assert "payload_truncated" not in by_offset[2]
    assert by_offset[2]["payload"] == small.decode()
    for offset, original in ((1, big_text), (3, big_binary)):
        letter = by_offset[offset]
        assert letter["payload_truncated"] is True
        assert letter["payload_size"] == len(original)
        assert letter["payload_sha256"] == hashlib.sha256(original).hexdigest()
        raw = (
            base64.b64decode(letter["payload"])
            if letter["payload_encoding"] == "base64"
            else letter["payload"].encode()
        )
        assert raw == original[:LIMIT]
        assert letter["reason"] in {"malformed_json", "not_utf8"}


def test_a_bounded_payload_is_cut_on_a_character_boundary() -> None:
    from core.orders.ingest import dead_letter_envelope
    from core.orders.parsing import parse_order

    data = "я".encode() * 3000  # two bytes each: LIMIT falls between them if odd
    rejection = parse_order(data)
    assert not hasattr(rejection, "order_uid")
    envelope = dead_letter_envelope(delivery(data, 0), rejection, "t", limit=LIMIT + 1)  # type: ignore[arg-type]
    assert envelope["payload_encoding"] == "utf-8"
    assert envelope["payload"] == "я" * (LIMIT // 2)


async def test_a_dead_letter_refused_even_bounded_is_kept_in_the_store_once() -> None:
    bus = MemoryEventBus(max_message_bytes=LIMIT // 2)  # even the bounded envelope is too large
    store = MemoryDeadLetterStore()
    use_case = ingest(bus, store)
    batch = [delivery(SAMPLE, 0), delivery(b"{" + b"x" * 50_000, 1), delivery(b"[1]", 2)]

    report = await use_case.handle(batch)
    again = await use_case.handle(batch)  # a retried batch keeps it once

    assert (report.inserted, report.dead_lettered, report.truncated, report.kept) == (1, 2, 0, 1)
    assert again.duplicates == 1
    assert [letter["source"]["offset"] for letter in letters(bus)] == [
        2
    ]  # the bus drops the re-published key
    assert await store.count() == 1
    ((topic, kept),) = store.kept.values()
    assert topic == DLQ
    envelope = json.loads(kept.data)
    assert envelope["payload_truncated"] is True
    assert envelope["source"]["offset"] == 1


async def test_without_a_store_a_letter_refused_bounded_fails_the_batch_loudly() -> None:
    bus = MemoryEventBus(max_message_bytes=LIMIT // 2)
    with pytest.raises(MessageRefused):
        await ingest(bus, None).handle([delivery(b"{" + b"x" * 50_000, 1)])
