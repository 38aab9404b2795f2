"""The dead-letter use cases (``core.orders.dlq``) on in-memory adapters: envelopes read back,
selection, truncated and unreadable letters never replayed, replay keyed by the dead letter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from adapters.memory.bus import MemoryEventBus
from adapters.memory.dead_letters import MemoryDeadLetterArchive
from core.orders.dlq import DeadLetterQueue, Selection, read_dead_letter
from core.orders.ingest import dead_letter_envelope
from core.orders.parsing import Rejection
from core.ports.bus import Delivery
from core.ports.dead_letters import KeptDeadLetter
from entrypoints.dlq import parse_moment, safe, safe_bytes

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def kept(ref: str, data: bytes, reason: str = "malformed_json", **kw: object) -> KeptDeadLetter:
    delivery = Delivery(data=data, key=f"k{ref}", source={"stream": "ORDERS", "seq": int(ref)})
    envelope = dead_letter_envelope(
        delivery, Rejection(reason=reason), (NOW - timedelta(minutes=int(ref))).isoformat(), **kw
    )
    return KeptDeadLetter(ref=ref, data=json.dumps(envelope).encode())


def test_envelopes_read_back_with_their_payload() -> None:
    text = read_dead_letter("memory", kept("1", b'{"a": "\xd1\x8f"}'))
    assert text.payload == b'{"a": "\xd1\x8f"}'
    assert text.payload_encoding == "utf-8"
    assert text.complete
    binary = read_dead_letter("memory", kept("2", b"\xff\xfe{"))
    assert binary.payload == b"\xff\xfe{"
    assert binary.payload_encoding == "base64"
    assert binary.id == "memory:2"
    assert binary.received_at == NOW - timedelta(minutes=2)


def test_a_bounded_envelope_is_truncated_unless_it_kept_everything() -> None:
    cut = read_dead_letter("memory", kept("1", b"x" * 5000, limit=1024))
    assert cut.truncated
    whole = read_dead_letter("memory", kept("2", b"x" * 500, limit=1024))
    assert not whole.truncated
    assert whole.payload == b"x" * 500


def test_a_document_that_is_not_an_envelope_is_unreadable() -> None:
    letter = read_dead_letter("memory", KeptDeadLetter(ref="9", data=b"\xffnot json"))
    assert letter.reason == "unreadable_envelope"
    assert letter.payload is None


async def test_select_list_and_replay() -> None:
    archive = MemoryDeadLetterArchive(
        [
            kept("1", b"one"),
            kept("2", b"two", reason="invalid_order"),
            kept("3", b"y" * 3000, reason="invalid_order", limit=1024),
            KeptDeadLetter(ref="4", data=b"garbage"),
        ]
    )
    bus = MemoryEventBus()
    queue = DeadLetterQueue([archive], publisher=bus, orders_topic="orders")
    listing = await queue.list(Selection(), limit=2)
    assert len(listing.letters) == 2
    assert listing.by_reason == {"invalid_order": 2, "malformed_json": 1, "unreadable_envelope": 1}
    recent = await queue.list(Selection(since=NOW - timedelta(minutes=2, seconds=30)))
    assert [letter.id for letter in recent.letters] == ["memory:1", "memory:2"]
    older = await queue.list(Selection(until=NOW - timedelta(minutes=1, seconds=30)))
    assert [letter.id for letter in older.letters] == ["memory:2", "memory:3"]

    dry = await queue.replay(Selection(reasons=frozenset({"invalid_order"})), dry_run=True)
    assert dry.replayed == ["memory:2"]
    assert dry.truncated == ["memory:3"]
    subscription = await bus.subscribe("orders", "check")
    assert await subscription.fetch(10, 0) == []

    seen: list[int] = []
    report = await queue.replay(Selection(), dry_run=False, progress=seen.append)
    assert report.selected == 4
    assert report.replayed == ["memory:1", "memory:2"]
    assert report.truncated == ["memory:3"]
    assert report.unreadable == ["memory:4"]
    assert sum(seen) == 2
    got = await subscription.fetch(10, 0)
    assert [(d.data, d.key) for d in got] == [
        (b"one", "replay:memory:1"),
        (b"two", "replay:memory:2"),
    ]
    assert got[0].headers == {"hexmarket-replay-of": "memory:1"}
    assert (await queue.show("memory:2")) is not None
    assert (await queue.show("memory:99")) is None
    assert (await queue.show("kafka:2")) is None


async def test_a_refused_replay_is_reported_and_the_others_go_on() -> None:
    archive = MemoryDeadLetterArchive([kept("1", b"small"), kept("2", b"z" * 2000)])
    bus = MemoryEventBus(max_message_bytes=1000)
    report = await DeadLetterQueue([archive], publisher=bus).replay(Selection())
    assert report.replayed == ["memory:1"]
    assert list(report.refused) == ["memory:2"]


def test_text_from_messages_is_escaped_for_the_terminal() -> None:
    assert safe("a\x1b[31mb\u200bc") == "a\\x1b[31mb\\u200bc"
    assert safe("line\nnext", keep_newlines=True) == "line\nnext"
    assert safe("тест") == "тест"
    assert safe_bytes(b"ab\xff\x1b\\\n") == "ab\\xff\\x1b\\\\\n"
    assert parse_moment("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_moment("2025-01-02T03:04:05") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _dlq(*args: str, **env: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from entrypoints.cli import main

    clean = {"HEXMARKET_POSTGRES_URL": None, "HEXMARKET_NATS_URL": None, **env}
    result = CliRunner().invoke(main, ["dlq", *args], env=clean)
    return result.exit_code, result.output


def test_the_dlq_commands_have_help_and_refuse_what_cannot_work() -> None:
    for command in ("list", "show", "replay"):
        code, output = _dlq(command, "--help")
        assert code == 0, output
    code, output = _dlq("replay", HEXMARKET_ORDERS_BROKER="nats")
    assert code == 1
    assert "--all" in output
    code, output = _dlq("list", "--from", "broker", HEXMARKET_ORDERS_BROKER="memory")
    assert code == 2
    assert "exists only inside one process" in output
    code, output = _dlq("list", "--since", "yesterday")
    assert code == 2
    assert "neither a timestamp" in output


def test_an_unreachable_broker_is_one_line() -> None:
    from entrypoints.devstack import free_port

    code, output = _dlq(
        "list",
        "--from",
        "broker",
        HEXMARKET_ORDERS_BROKER="nats",
        HEXMARKET_NATS_URL=f"nats://127.0.0.1:{free_port()}",
    )
    assert code == 1
    assert output.startswith("error: cannot reach NATS")
