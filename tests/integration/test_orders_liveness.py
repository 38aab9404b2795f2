"""Consumers that never wedge, on real servers: a ~1 MB poison message (its dead letter larger
than the broker accepts) is dead-lettered in a bounded envelope and the stream moves on; a
dead letter refused even then is kept in Postgres; a Kafka broker restart under three
long-lived consumers; a prompt stop with the servers down."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from adapters.kafka_bus import KafkaEventBus
from core.errors import BrokerUnavailable
from core.ports.bus import EventBus, OutgoingMessage
from entrypoints.devstack import DevStack
from tests.integration.orders_support import (
    SAMPLE,
    Env,
    Running,
    Worker,
    big_invalid_non_utf8,
    big_invalid_quotes,
    big_valid,
    one_row,
    order,
    orders_env,
    payload_of,
)
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.support import eventually


async def test_a_1mb_poison_message_is_dead_lettered_bounded_and_the_stream_moves_on(
    env: Env,
) -> None:
    group = env.settings.orders_group
    poison = [big_invalid_non_utf8(), big_invalid_quotes(f"q-{group}")]
    small_bad = SAMPLE[:-10]
    valid = [order(f"v{i}-{group}", i) for i in range(60)]
    large_ok = big_valid(f"big-{group}")
    payloads = [*valid[:20], poison[0], *valid[20:40], small_bad, poison[1], large_ok, *valid[40:]]
    await env.publish(payloads)

    async with Running(env):

        async def all_stored() -> bool:
            return await env.stored() == len(valid) + 1

        async def all_dead() -> bool:
            return len(await env.read_dead_letters()) >= 3

        await eventually(all_stored, within=60, what="every valid order stored")
        await eventually(all_dead, within=30, what="every bad message dead-lettered")

    assert len(env.dead) == 3
    by_reason = {(letter["reason"], letter.get("payload_truncated", False)) for letter in env.dead}
    assert ("malformed_json", False) in by_reason
    truncated = [letter for letter in env.dead if letter.get("payload_truncated")]
    assert len(truncated) == 2
    digests = {hashlib.sha256(p).hexdigest(): len(p) for p in poison}
    for letter in truncated:
        assert digests[letter["payload_sha256"]] == letter["payload_size"]
        assert len(payload_of(letter)) <= env.settings.dead_letter_payload_limit
        assert letter["errors"]
    whole = [letter for letter in env.dead if not letter.get("payload_truncated")]
    assert payload_of(whole[0]) == small_bad
    (length,) = await one_row(
        env.pg_url,
        "SELECT length(document::text) FROM order_documents WHERE order_uid = %s",
        f"big-{group}",
    )
    assert length > 900_000


async def test_a_dead_letter_refused_even_bounded_is_kept_in_postgres(env: Env) -> None:
    # A bound larger than the broker's limit: the bounded envelope is refused too.
    settings = env.settings.model_copy(update={"dead_letter_payload_limit": 4_000_000})
    bounded_too_large = Env(env.broker, settings, env.env)
    group = env.settings.orders_group
    valid = [order(f"p{i}-{group}", i) for i in range(30)]
    await env.publish([*valid[:10], big_invalid_non_utf8(), *valid[10:]])
    try:
        async with Running(bounded_too_large) as consumer:

            async def all_stored() -> bool:
                return await env.stored() == len(valid)

            async def kept() -> bool:
                return consumer.stats.kept == 1

            await eventually(all_stored, within=60, what="every valid order stored")
            await eventually(kept, within=10, what="the dead letter counted as kept")
    finally:
        await bounded_too_large.close()
    async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
        cur = await conn.execute("SELECT topic, reason, envelope FROM dead_letters")
        rows = await cur.fetchall()
    assert len(rows) == 1
    topic, reason, envelope = rows[0]
    assert (topic, reason) == (env.settings.orders_dlq_topic, "not_utf8")
    letter = json.loads(bytes(envelope))
    assert letter["payload_sha256"] == hashlib.sha256(big_invalid_non_utf8()).hexdigest()
    assert await env.read_dead_letters() == []


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def _produce_steadily(
    env: Env, bus: EventBus, sent: list[str], stop: asyncio.Event, rate: int = 200
) -> None:
    """About ``rate`` orders per second, each batch re-sent until the broker took it."""
    n = 0
    group = env.settings.orders_group
    while not stop.is_set():
        uids = [f"r{n + i}-{group}" for i in range(rate // 10)]
        messages = [OutgoingMessage(data=order(uid, n + i), key=uid) for i, uid in enumerate(uids)]
        try:
            await bus.publish(env.settings.orders_topic, messages)
        except BrokerUnavailable:
            await asyncio.sleep(0.2)
            continue
        sent.extend(uids)
        n += len(uids)
        await asyncio.sleep(0.1)


@pytest.mark.kafka
@pytest.mark.parametrize("outage", [15.0])
async def test_three_long_lived_consumers_store_again_after_a_kafka_broker_restart(
    pg_url: str, unique: str, kafka_bootstrap: str, stack: DevStack, tmp_path: Path, outage: float
) -> None:
    environment = await orders_env(
        "kafka", pg_url, unique, kafka_bootstrap, HEXMARKET_INGEST_BATCH_SIZE="100"
    )
    producer = KafkaEventBus(kafka_bootstrap, partitions=6)
    await producer._ensure_topic(environment.settings.orders_topic)
    workers = [Worker(environment, tmp_path / f"consumer-{i}.log") for i in range(3)]
    sent: list[str] = []
    stop_producing = asyncio.Event()
    producing = asyncio.create_task(_produce_steadily(environment, producer, sent, stop_producing))
    try:
        start = _now_iso()

        async def each_stored_some() -> bool:
            for w in workers:
                assert w.process.poll() is None, w.tail()
            return all(w.inserted_since(start) > 0 for w in workers)

        await eventually(each_stored_some, within=60, what="each consumer storing orders")
        stack.kill("kafka")
        await asyncio.sleep(outage)  # the outage itself, long enough to expire the sessions
        await asyncio.to_thread(stack.start, "kafka")
        back = _now_iso()
        back_at = time.monotonic()

        async def each_stored_again() -> bool:
            for w in workers:
                assert w.process.poll() is None, w.tail()
            return all(w.inserted_since(back) > 0 for w in workers)

        await eventually(
            each_stored_again, within=30, what="each consumer storing again after the restart"
        )
        recovered = time.monotonic() - back_at
        stop_producing.set()
        await producing

        async def all_stored() -> bool:
            return await environment.stored() == len(set(sent))

        await eventually(all_stored, within=60, what="every order sent stored")
        stopping = time.monotonic()
        codes = [w.stop(timeout=10) for w in workers]
        stopped_in = time.monotonic() - stopping
        assert codes == [0, 0, 0], [w.tail() for w in workers]
        assert stopped_in < 15
        print(
            f"kafka restart after {outage:.0f}s: each consumer stored again {recovered:.1f}s after"
        )
    finally:
        stop_producing.set()
        if not producing.done():
            producing.cancel()
        for w in workers:
            if w.process.poll() is None:
                w.process.kill()
                w.process.wait(10)
        await producer.close()
        await environment.close()
    stored = await one_row(pg_url, "SELECT count(*), count(DISTINCT order_uid) FROM orders")
    assert stored == (len(set(sent)), len(set(sent)))


@pytest.mark.parametrize("broker", ["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
async def test_sigterm_stops_a_consumer_within_5s_while_its_servers_are_down(
    broker: str, pg_url: str, unique: str, stack: DevStack, tmp_path: Path
) -> None:
    environment = await orders_env(
        broker,
        pg_url,
        unique,
        stack.nats_url() if broker == "nats" else stack.kafka_bootstrap(),
        HEXMARKET_INGEST_BATCH_SIZE="100",
        **({"HEXMARKET_NATS_ACK_WAIT": "5"} if broker == "nats" else {}),
    )
    first, late = 3000, 100
    total = first + late
    await environment.publish([order(f"s{i}-{unique}", i) for i in range(first)])
    worker = Worker(environment, tmp_path / "consumer.log")
    try:

        async def some_stored() -> bool:
            assert worker.process.poll() is None, worker.tail()
            return await environment.stored() > 0

        await eventually(some_stored, within=60, what="the first batches stored")
        stack.stop("postgres")
        # Orders that arrive while PostgreSQL is down: the consumer is then sure to hold a batch
        # it cannot store (it may have stored all of the first ones before the stop).
        await environment.publish([order(f"late{i}-{unique}", i) for i in range(late)])
        stack.kill(broker)

        async def retrying() -> bool:
            assert worker.process.poll() is None, worker.tail()
            return "failed, retrying" in worker.log_path.read_text(errors="replace")

        await eventually(retrying, within=30, what="the consumer retrying")
        started = time.monotonic()
        code = await asyncio.to_thread(worker.stop, 10)
        took = time.monotonic() - started
        assert code == 0, worker.tail()
        assert took < 5, f"stopped in {took:.1f}s"
        print(f"{broker}: stopped {took:.2f}s after SIGTERM with its servers down")
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)
        await asyncio.to_thread(stack.start, "postgres")
        await asyncio.to_thread(stack.start, broker)
        await environment.close()

    # Nothing acknowledged was lost: a new consumer stores every order exactly once.
    worker = Worker(environment, tmp_path / "consumer-after.log")
    try:

        async def all_stored() -> bool:
            assert worker.process.poll() is None, worker.tail()
            return await environment.stored() == total

        await eventually(all_stored, within=90, what="every order stored after the restart")
        assert worker.stop() == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)
