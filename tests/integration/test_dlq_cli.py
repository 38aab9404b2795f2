"""``hexmarket dlq`` on real servers (NATS JetStream and Kafka, PostgreSQL): dead letters made by
a real consumer are listed, counted per reason, shown with the payload decoded, and replayed to
the orders topic (dry run, truncated ones skipped, twice without a duplicate), while the readers
of the dead-letter topic are not disturbed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from adapters.nats_bus import stream_for
from adapters.postgres.dead_letters import PgDeadLetterStore
from core.orders.ingest import dead_letter_envelope
from core.orders.parsing import FieldError, Rejection
from core.ports.bus import Delivery, OutgoingMessage
from tests.integration.orders_support import CORRUPTIONS, Env, Running, order
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.support import cli_output, eventually, run_cli


def dlq_cli(env: Env, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_cli("dlq", *args, env={**os.environ, **env.env, "COLUMNS": "200"}, timeout=120)


def crafted(env: Env, data: bytes, key: str, *, limit: int | None = None) -> OutgoingMessage:
    """A dead letter as the consumer makes it, for a message dead-lettered by a rule that has
    been fixed since (its payload is a valid order now)."""
    delivery = Delivery(data=data, key=key, source={"topic": env.settings.orders_topic, "x": key})
    rejection = Rejection(
        reason="invalid_order", errors=(FieldError(field="delivery.zip", error="too strict"),)
    )
    envelope = dead_letter_envelope(delivery, rejection, datetime.now(UTC).isoformat(), limit=limit)
    return OutgoingMessage(
        data=json.dumps(envelope).encode(), key=f"dlq:{key}", headers={"reason": "invalid_order"}
    )


async def dlq_readers(env: Env) -> set[str]:
    """The consumers / groups reading the dead-letter topic, as the broker lists them."""
    if env.broker == "nats":
        import nats

        assert env.settings.nats_url is not None
        nc = await nats.connect(env.settings.nats_url)
        try:
            stream = stream_for(env.settings.orders_dlq_topic, {})
            infos = await nc.jetstream().consumers_info(stream)
            return {info.name for info in infos}
        finally:
            await nc.close()
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": env.settings.kafka_bootstrap_servers})

    def groups() -> set[str]:
        result = admin.list_consumer_groups(request_timeout=10).result()
        return {g.group_id for g in result.valid}

    return await asyncio.to_thread(groups)


async def test_list_show_and_replay_dead_letters(env: Env) -> None:
    unique = env.settings.orders_group
    valid = [order(f"v{i}-{unique}", i) for i in range(20)]
    await env.publish(valid + [payload for payload, _, _ in CORRUPTIONS.values()])
    fixed = order(f"fixed-{unique}", 1)
    in_pg = order(f"pg-{unique}", 2)
    huge = order(f"huge-{unique}", 3).replace(
        b'"entry"', b'"padding": "' + b"x" * 4000 + b'", "entry"'
    )
    await env.producer.publish(
        env.settings.orders_dlq_topic,
        [crafted(env, fixed, f"fixed-{unique}"), crafted(env, huge, f"huge-{unique}", limit=1024)],
    )
    async with AsyncConnectionPool(env.pg_url, min_size=1, max_size=2, open=False) as pool:
        kept = await PgDeadLetterStore(pool).keep(
            env.settings.orders_dlq_topic, [crafted(env, in_pg, f"pg-{unique}", limit=65536)]
        )
    assert kept == 1

    async with Running(env) as consumer:

        async def all_dead() -> bool:
            return len(await env.read_dead_letters()) >= len(CORRUPTIONS) + 2

        await eventually(all_dead, within=60, what="every invalid message dead-lettered")
        readers_before = await dlq_readers(env)

        # list: every dead letter, counted per reason
        listing = cli_output(dlq_cli(env, "list"))
        total = len(CORRUPTIONS) + 3
        reasons: dict[str, int] = {}
        for _, reason, _ in CORRUPTIONS.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        reasons["invalid_order"] += 3
        assert f"{total} dead letter(s); by reason:" in listing, listing
        for reason, count in reasons.items():
            assert f"{reason} {count}" in listing, (reason, listing)
        assert "not_utf8 1" in cli_output(dlq_cli(env, "list", "--reason", "not_utf8"))
        assert "0 dead letter(s)" in cli_output(
            dlq_cli(env, "list", "--until", "2000-01-01T00:00:00Z")
        )
        assert f"{total} dead letter(s)" in cli_output(dlq_cli(env, "list", "--since", "1h"))
        rows = [
            json.loads(line)
            for line in cli_output(dlq_cli(env, "list", "--json", "--limit", "100")).splitlines()
        ]
        assert len(rows) == total
        by_key = {row["key"]: row for row in rows}
        prefix = "nats:" if env.broker == "nats" else "kafka:"
        assert by_key[f"fixed-{unique}"]["id"].startswith(prefix)
        assert by_key[f"pg-{unique}"]["id"] == f"pg:dlq:pg-{unique}"
        assert by_key[f"huge-{unique}"]["replayable"] is False
        assert by_key[f"pg-{unique}"]["replayable"] is True

        # show: the payload decoded, non-UTF-8 bytes escaped, --raw gives the exact bytes
        not_utf8 = next(r for r in rows if r["reason"] == "not_utf8")
        shown = cli_output(dlq_cli(env, "show", not_utf8["id"]))
        assert "payload:      base64" in shown
        assert "\\xff\\xfe" in shown
        assert "\x1b" not in shown
        raw = dlq_cli(env, "show", "--raw", not_utf8["id"])
        assert raw.returncode == 0, raw.stderr
        assert raw.stdout == CORRUPTIONS["non-utf-8 bytes"][0]
        huge_id = by_key[f"huge-{unique}"]["id"]
        assert "TRUNCATED" in cli_output(dlq_cli(env, "show", huge_id))
        missing = dlq_cli(env, "show", prefix + "999999" + ("" if env.broker == "nats" else "/1"))
        assert missing.returncode == 1
        assert b"no dead letter" in missing.stderr

        # replay needs a selection; a dry run publishes nothing
        assert dlq_cli(env, "replay").returncode == 1
        ids = ["--id", by_key[f"fixed-{unique}"]["id"], "--id", f"pg:dlq:pg-{unique}"]
        dry = cli_output(dlq_cli(env, "replay", "--dry-run", *ids, "--id", huge_id))
        assert "would replay 2 of 3 selected" in dry, dry
        assert "skipped 1 truncated" in dry

        stored_before = await env.stored()
        assert stored_before == len(valid)
        replayed = cli_output(dlq_cli(env, "replay", *ids, "--id", huge_id))
        assert "replayed 2 of 3 selected" in replayed, replayed
        assert "skipped 1 truncated" in replayed
        assert huge_id in replayed

        async def replayed_stored() -> bool:
            return await env.stored() == len(valid) + 2

        await eventually(replayed_stored, within=60, what="the replayed orders stored")

        # twice: no order stored twice (JetStream drops the same replay key; Kafka's copies are
        # duplicates to the idempotent ingest)
        assert "replayed 2 of 2 selected" in cli_output(dlq_cli(env, "replay", *ids))
        if env.broker == "kafka":

            async def duplicates_counted() -> bool:
                return consumer.stats.duplicates >= 2

            await eventually(
                duplicates_counted, within=60, what="the second replay counted as duplicates"
            )
        assert await env.stored() == len(valid) + 2
        async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM orders WHERE order_uid = ANY(%s)",
                ([f"fixed-{unique}", f"pg-{unique}"],),
            )
            row = await cur.fetchone()
        assert row is not None
        assert row[0] == 2

        # the dead-letter topic's readers are as they were: no durable, no group left behind,
        # and the test's own reader got nothing new but what it had
        assert await dlq_readers(env) == readers_before
        assert not any(name.startswith("hexmarket-dlq-reader") for name in readers_before)
        assert len(await env.read_dead_letters()) == len(CORRUPTIONS) + 2


async def test_an_empty_dead_letter_topic_lists_nothing(env: Env) -> None:
    listing = cli_output(dlq_cli(env, "list", "--from", "broker"))
    assert "0 dead letter(s); by reason: none" in listing
    assert dlq_cli(env, "show", "--from", "broker", f"{env.broker}:1").returncode == 1
