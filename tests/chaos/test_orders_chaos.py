"""Order ingest under chaos, on real servers started by the devstack, for each broker.

Three ``consume-orders`` processes share one group (Kafka: 6 partitions). While orders are
produced — valid ones, re-sent duplicates, every corrupt kind, ~1 MB poison messages and a ~1 MB
valid order — a consumer is killed with SIGKILL every few seconds and started again, and Postgres
and the broker are each killed with SIGKILL mid-stream and restarted. Checked from outside the
processes, once the last fault is over:

- the stored orders are exactly the distinct valid ones, each once, and each round-trips through
  ``GET /order`` unchanged;
- every bad message is a dead letter (on the broker, or in Postgres when the broker refused even
  its bounded envelope) with its reason; repeats (a bad message redelivered after a kill) are
  counted and reported, not hidden;
- the group's lag is 0;
- all of it within ``CONVERGE_WITHIN`` seconds of the last fault.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from litestar.testing import AsyncTestClient

from adapters.kafka_bus import KafkaEventBus
from adapters.nats_bus import NatsEventBus
from core.errors import InfrastructureError
from core.ports.bus import EventBus, OutgoingMessage
from entrypoints.container import Container
from entrypoints.devstack import DevStack
from entrypoints.http.app import create_app
from tests.chaos import figures
from tests.chaos.lag import lag
from tests.integration.orders_support import (
    CORRUPTIONS,
    Env,
    Worker,
    app_settings,
    big_invalid_non_utf8,
    big_invalid_quotes,
    big_valid,
    order,
    payload_of,
)
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.support import eventually

VALID = 3000
DUPLICATES = 300
CONSUMERS = 3
KAFKA_PARTITIONS = 6
PRODUCE_SECONDS = 20.0
CONSUMER_KILL_EVERY = 2.5
POSTGRES_OUTAGE = (5.0, 3.0)  # (seconds into the run, seconds down)
BROKER_OUTAGE = (11.0, 4.0)
CONVERGE_WITHIN = 60.0  # after the last fault ends: the promise docs/operations.md states


def _messages(group: str) -> tuple[list[OutgoingMessage], dict[str, bytes], dict[str, str]]:
    """What is produced, shuffled with a fixed seed: valid orders (keyed by uid), re-sends of
    some of them (unkeyed, so the broker's own de-duplication does not hide them), and each
    bad kind. Returns the messages, the valid documents by uid and each bad payload's expected
    reason by SHA-256."""
    rng = random.Random(20261204)
    valid = {f"c{i}-{group}": order(f"c{i}-{group}", i) for i in range(VALID - 1)}
    valid[f"big-{group}"] = big_valid(f"big-{group}")
    bad: dict[bytes, str] = {payload: reason for payload, reason, _ in CORRUPTIONS.values()}
    bad[big_invalid_non_utf8()] = "not_utf8"
    bad[big_invalid_quotes(f"q-{group}")] = "invalid_order"
    messages = [OutgoingMessage(data=doc, key=uid) for uid, doc in valid.items()]
    again = rng.sample(sorted(valid), DUPLICATES)
    messages += [OutgoingMessage(data=valid[uid]) for uid in again]
    messages += [OutgoingMessage(data=payload) for payload in bad]
    rng.shuffle(messages)
    expected_bad = {hashlib.sha256(p).hexdigest(): reason for p, reason in bad.items()}
    return messages, valid, expected_bad


def _producer(environment: Env) -> EventBus:
    s = environment.settings
    if environment.broker == "nats":
        assert s.nats_url is not None
        return NatsEventBus(s.nats_url, streams={s.orders_topic: s.orders_stream})
    assert s.kafka_bootstrap_servers is not None
    return KafkaEventBus(s.kafka_bootstrap_servers, partitions=KAFKA_PARTITIONS)


async def _produce(bus: EventBus, topic: str, messages: list[OutgoingMessage]) -> int:
    """Spread ``messages`` over ``PRODUCE_SECONDS``; a chunk the broker did not take (it is
    down) is sent again, as any producer would. Returns how many chunks were re-sent."""
    chunk = 25
    pause = PRODUCE_SECONDS / (len(messages) / chunk)
    resent = 0
    for start in range(0, len(messages), chunk):
        while True:
            try:
                await bus.publish(topic, messages[start : start + chunk])
                break
            except InfrastructureError:
                resent += 1
                await asyncio.sleep(0.2)
        await asyncio.sleep(pause)
    return resent


class Faults:
    """Kills consumers on a schedule, takes Postgres and the broker down once each, and restarts
    a consumer that exited the way an orchestrator would: only a start-up refused because a
    server was down (one clear line, exit 1) is an accepted exit; any other fails the run."""

    def __init__(self, stack: DevStack, broker: str, spawn: Callable[[int], Worker]) -> None:
        self.stack = stack
        self.broker = broker
        self.spawn = spawn
        self.workers = [spawn(i) for i in range(CONSUMERS)]
        self.retired: list[Worker] = []
        self.kills = 0
        self.refused_starts = 0
        self.outages: list[str] = []
        self.last_fault_ended = time.monotonic()

    async def run(self) -> None:
        began = time.monotonic()

        async def outage(name: str, at: float, down: float) -> None:
            await asyncio.sleep(at)
            await asyncio.to_thread(self.stack.kill, name)  # type: ignore[arg-type]
            await asyncio.sleep(down)
            await asyncio.to_thread(self.stack.start, name)  # type: ignore[arg-type]
            self.outages.append(f"{name} {down:.0f} s")
            self.last_fault_ended = time.monotonic()

        async def kill_consumers() -> None:
            victim = 0
            while time.monotonic() - began < PRODUCE_SECONDS:
                await asyncio.sleep(CONSUMER_KILL_EVERY)
                self.alive()
                worker = self.workers[victim]
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait, 10)
                self._replace(victim)
                self.kills += 1
                self.last_fault_ended = time.monotonic()
                victim = (victim + 1) % CONSUMERS

        await asyncio.gather(
            kill_consumers(),
            outage("postgres", *POSTGRES_OUTAGE),
            outage(self.broker, *BROKER_OUTAGE),
        )

    def _replace(self, slot: int) -> None:
        self.retired.append(self.workers[slot])
        self.workers[slot] = self.spawn(slot)

    def alive(self) -> None:
        """Every consumer runs; one that refused to start (a server down) is started again."""
        for slot, worker in enumerate(self.workers):
            code = worker.process.poll()
            if code is None:
                continue
            assert code == 1, worker.tail()
            assert "cannot reach" in worker.tail(), worker.tail()
            self.refused_starts += 1
            self._replace(slot)

    def stop(self) -> list[int]:
        codes = [w.stop(timeout=10) for w in self.workers]
        for worker in self.retired:
            worker.stop(timeout=1)
        return codes


async def _kept_in_postgres(pg_url: str) -> list[dict[str, Any]]:
    """Dead letters the broker refused even bounded (the liveness issue's table)."""
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute("SELECT envelope FROM dead_letters")
        return [json.loads(bytes(row[0])) for row in await cur.fetchall()]


async def test_orders_survive_killed_consumers_and_a_postgres_and_broker_crash(
    env: Env, stack: DevStack, tmp_path: Path
) -> None:
    group = env.settings.orders_group
    env.env |= {"HEXMARKET_NATS_ACK_WAIT": "3", "HEXMARKET_INGEST_BATCH_SIZE": "200"}
    messages, valid, expected_bad = _messages(group)
    producer = _producer(env)
    if isinstance(producer, KafkaEventBus):
        await producer._ensure_topic(env.settings.orders_topic)
    spawned = Counter[int]()

    def spawn(slot: int) -> Worker:
        spawned[slot] += 1
        return Worker(env, tmp_path / f"consumer-{slot}-{spawned[slot]}.log")

    faults = Faults(stack, env.broker, spawn)
    try:
        producing = asyncio.create_task(_produce(producer, env.settings.orders_topic, messages))
        await faults.run()
        resent = await producing

        letters: list[dict[str, Any]] = []

        async def converged() -> bool:
            faults.alive()
            nonlocal letters
            letters = [*await env.read_dead_letters(), *await _kept_in_postgres(env.pg_url)]
            seen = {_digest(letter) for letter in letters}
            return await env.stored() == len(valid) and seen >= set(expected_bad)

        await eventually(converged, within=CONVERGE_WITHIN, what="every order stored or dead")
        recovered = time.monotonic() - faults.last_fault_ended

        async def no_lag() -> bool:
            st = env.settings
            url = st.nats_url if env.broker == "nats" else st.kafka_bootstrap_servers
            assert url is not None
            stream = st.orders_stream if env.broker == "nats" else st.orders_topic
            return await lag(env.broker, url, stream, st.orders_group, KAFKA_PARTITIONS) == 0

        await eventually(no_lag, within=30, what="lag 0")
        codes = faults.stop()
        assert codes == [0] * CONSUMERS, [w.tail() for w in faults.workers]
    finally:
        faults.stop()
        await producer.close()

    async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
        cur = await conn.execute("SELECT order_uid FROM orders")
        stored = [str(row[0]) for row in await cur.fetchall()]
    assert len(stored) == len(set(stored)) == len(valid)
    assert set(stored) == set(valid)

    by_digest = Counter(_digest(letter) for letter in letters)
    assert set(by_digest) == set(expected_bad), "a dead letter that was never produced"
    for letter in letters:
        assert letter["reason"] == expected_bad[_digest(letter)], letter["reason"]
    repeats = sum(by_digest.values()) - len(by_digest)

    container = Container(settings=app_settings(env.pg_url, orders_cache="lru"))
    async with AsyncTestClient(create_app(container)) as client:
        for uid, document in valid.items():
            response = await client.get(f"/order/{uid}")
            assert response.status_code == 200, uid
            assert response.json() == json.loads(document), uid

    figures.record(
        figures.Row(
            run=f"orders on {env.broker}, {CONSUMERS} consumers",
            produced=f"{len(messages)} ({len(valid)} valid, {DUPLICATES} re-sent,"
            f" {len(expected_bad)} bad; {resent} chunks re-sent)",
            stored=len(stored),
            lost=len(set(valid) - set(stored)),
            duplicated=len(stored) - len(set(stored)),
            dead_lettered=f"{len(by_digest)} / {repeats}",
            kills=faults.kills,
            refused_starts=faults.refused_starts,
            outages=", ".join(faults.outages),
            recovered_s=recovered,
        )
    )


def _digest(letter: dict[str, Any]) -> str:
    if letter.get("payload_truncated"):
        return str(letter["payload_sha256"])
    return hashlib.sha256(payload_of(letter)).hexdigest()
