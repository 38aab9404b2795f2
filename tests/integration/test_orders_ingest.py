"""Order ingest end to end on real servers: a broker (NATS JetStream or Kafka) -> the orders
consumer -> PostgreSQL, with dead letters on the broker. Also: a Postgres outage mid-ingest,
and a consumer process killed with SIGKILL mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from core.contracts.orders import example_document
from entrypoints.devstack import DevStack
from tests.integration.orders_support import CORRUPTIONS, Env, Running, one_row, order, payload_of
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.support import ROOT, eventually


async def test_orders_flow_through_once_and_invalid_ones_are_dead_lettered(env: Env) -> None:
    valid = [order(f"e{i}-{env.settings.orders_group}", i) for i in range(300)]
    payloads: list[bytes] = []
    corrupt = list(CORRUPTIONS.values())
    for index, payload in enumerate(valid):
        payloads.append(payload)
        if index % 30 == 0 and index // 30 < len(corrupt):
            payloads.append(corrupt[index // 30][0])
    await env.publish(payloads)

    async with Running(env) as consumer:

        async def all_stored() -> bool:
            return await env.stored() == len(valid)

        async def all_dead() -> bool:
            return len(await env.read_dead_letters()) >= len(CORRUPTIONS)

        await eventually(all_stored, within=60, what="every valid order stored")
        await eventually(all_dead, within=60, what="every invalid message dead-lettered")

        by_payload: dict[bytes, dict[str, Any]] = {payload_of(d): d for d in env.dead}
        assert len(env.dead) == len(CORRUPTIONS)
        for name, (payload, reason, field) in CORRUPTIONS.items():
            letter = by_payload[payload]
            assert letter["reason"] == reason, name
            assert letter["errors"], name
            if field:
                assert field in {e["field"] for e in letter["errors"]}, (name, letter)
            source = letter["source"]
            assert set(source) in ({"topic", "partition", "offset"}, {"stream", "seq"})
        assert by_payload[CORRUPTIONS["non-utf-8 bytes"][0]]["payload_encoding"] == "base64"

        # Redelivered duplicates: counted, not stored twice.
        await env.publish(valid[:50])

        async def duplicates_seen() -> bool:
            return consumer.stats.duplicates >= 50

        await eventually(duplicates_seen, within=60, what="duplicates counted")
        assert await env.stored() == len(valid)
        assert consumer.stats.inserted == len(valid)
        assert consumer.stats.duplicates == 50
        assert consumer.stats.dead_lettered == len(CORRUPTIONS)

    (document,) = await one_row(
        env.pg_url,
        "SELECT document::text FROM order_documents WHERE order_uid = %s",
        f"e7-{env.settings.orders_group}",
    )
    assert json.loads(document) == json.loads(valid[7])


async def test_a_postgres_outage_mid_ingest_loses_and_dead_letters_nothing(
    env: Env, stack: DevStack
) -> None:
    first = [order(f"a{i}", i) for i in range(100)]
    second = [order(f"b{i}", i) for i in range(150)]
    await env.publish(first)
    async with Running(env) as consumer:

        async def first_stored() -> bool:
            return await env.stored() == len(first)

        await eventually(first_stored, within=60, what="the first orders stored")
        stack.stop("postgres")
        try:
            await env.publish(second)

            async def retrying() -> bool:
                return consumer.stats.retries >= 2

            await eventually(retrying, within=60, what="the consumer retrying")
            assert consumer.stats.inserted == len(first)
            assert await env.read_dead_letters() == []
        finally:
            stack.start("postgres")

        async def all_stored() -> bool:
            return await env.stored() == len(first) + len(second)

        await eventually(all_stored, within=120, what="every order stored after the restart")
        assert await env.read_dead_letters() == []
        assert consumer.stats.inserted == len(first) + len(second)

    (items,) = await one_row(env.pg_url, "SELECT count(*) FROM items")
    assert items == sum(len(json.loads(p)["items"]) for p in first + second)


def _spawn(env: Env) -> subprocess.Popen[bytes]:
    environment = {**os.environ, **env.env, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoints.workers.orders_consumer"],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_a_consumer_killed_mid_batch_loses_and_duplicates_nothing(env: Env) -> None:
    total = 2000
    await env.publish([order(f"k{i}", i) for i in range(total)])
    worker = _spawn(env)
    try:

        async def some_stored() -> bool:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else b""
            return await env.stored() >= 200

        await eventually(some_stored, within=60, what="the first batches stored")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = await env.stored()
        assert killed_at < total, "the kill came too late to be mid-ingest"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)

    worker = _spawn(env)
    try:

        async def all_stored() -> bool:
            assert worker.poll() is None
            return await env.stored() == total

        await eventually(all_stored, within=120, what="every order stored after the restart")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert await env.stored() == total
    assert await env.read_dead_letters() == []
    row = await one_row(env.pg_url, "SELECT count(DISTINCT order_uid), count(*) FROM items")
    assert row[0] == total
    assert row[1] == sum(len(example_document("x", i)["items"]) for i in range(total))
