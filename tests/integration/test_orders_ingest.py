"""Order ingest end to end on real servers: a broker (NATS JetStream or Kafka) -> the orders
consumer -> PostgreSQL, with dead letters on the broker. Also: a Postgres outage mid-ingest,
and a consumer process killed with SIGKILL mid-batch."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.nats_bus import NatsEventBus
from adapters.postgres.migrate import migrate
from core.contracts.orders import example_document
from core.orders.ingest import OrderConsumer
from core.ports.bus import EventBus, OutgoingMessage
from core.retry import Backoff
from entrypoints.container import Container
from entrypoints.devstack import DevStack
from entrypoints.settings import Settings
from tests.support import eventually

SAMPLE = (Path(__file__).parents[1] / "data" / "model.json").read_bytes()
ROOT = Path(__file__).parents[2]


def order(uid: str, variant: int = 0) -> bytes:
    return json.dumps(example_document(uid, variant)).encode()


class Env:
    """One broker + one database, named with the test's ``unique`` token."""

    def __init__(self, broker: str, settings: Settings, env: dict[str, str]) -> None:
        self.broker = broker
        self.settings = settings
        self.env = env  # the same settings as environment variables, for subprocesses
        self.producer: EventBus = self.new_bus()
        self._dlq_sub: Any = None
        self.dead: list[dict[str, Any]] = []

    def new_bus(self) -> EventBus:
        s = self.settings
        if self.broker == "nats":
            assert s.nats_url is not None
            return NatsEventBus(s.nats_url, streams={s.orders_topic: s.orders_stream})
        from adapters.kafka_bus import KafkaEventBus

        assert s.kafka_bootstrap_servers is not None
        return KafkaEventBus(s.kafka_bootstrap_servers, partitions=3)

    async def publish(self, payloads: list[bytes]) -> None:
        await self.producer.publish(
            self.settings.orders_topic, [OutgoingMessage(data=p) for p in payloads]
        )

    async def stored(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.pg_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM orders")
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    @property
    def pg_url(self) -> str:
        assert self.settings.postgres_url is not None
        return self.settings.postgres_url

    async def read_dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter so far (reads what arrived since the last call)."""
        if self._dlq_sub is None:
            self._dlq_sub = await self.producer.subscribe(
                self.settings.orders_dlq_topic, self.settings.orders_group + "-dlq-reader"
            )
        batch = await self._dlq_sub.fetch(100, 0.2)
        if batch:
            await self._dlq_sub.ack(batch)
            self.dead.extend(json.loads(d.data) for d in batch)
        return self.dead

    def consumer(self, container: Container, ingest: Any, bus: EventBus) -> OrderConsumer:
        return OrderConsumer(
            source=bus,
            topic=self.settings.orders_topic,
            group=self.settings.orders_group,
            ingest=ingest,
            batch_size=self.settings.ingest_batch_size,
            batch_timeout=self.settings.ingest_batch_ms / 1000,
            backoff=Backoff(initial=0.05, maximum=1.0),
        )

    async def close(self) -> None:
        if self._dlq_sub is not None:
            await self._dlq_sub.close()
        await self.producer.close()


@pytest.fixture(params=["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
async def env(request: pytest.FixtureRequest, pg_url: str, unique: str) -> AsyncIterator[Env]:
    await migrate(pg_url)
    values: dict[str, str] = {
        "HEXMARKET_POSTGRES_URL": pg_url,
        "HEXMARKET_ORDERS_STORE": "postgres",
        "HEXMARKET_ORDERS_BROKER": request.param,
        "HEXMARKET_ORDERS_TOPIC": f"orders.{unique}",
        "HEXMARKET_ORDERS_STREAM": f"ORDERS_{unique.upper()}",
        "HEXMARKET_ORDERS_DLQ_TOPIC": f"orders.dlq.{unique}",
        "HEXMARKET_ORDERS_GROUP": f"orders-{unique}",
        "HEXMARKET_INGEST_BATCH_SIZE": "40",
        "HEXMARKET_INGEST_BATCH_MS": "50",
        "HEXMARKET_PG_POOL_SIZE": "4",
    }
    if request.param == "nats":
        values["HEXMARKET_NATS_URL"] = request.getfixturevalue("nats_url")
    else:
        values["HEXMARKET_KAFKA_BOOTSTRAP_SERVERS"] = request.getfixturevalue("kafka_bootstrap")
    settings = Settings(_env_file=None, **_as_init(values))
    environment = Env(request.param, settings, values)
    yield environment
    await environment.close()


def _as_init(values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key.removeprefix("HEXMARKET_").lower()
        if name == "kafka_bootstrap_servers":
            out["KAFKA_BOOTSTRAP_SERVERS"] = value
        else:
            out[name] = value
    return out


class Running:
    """An in-process consumer built from the container, as a task."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.container = Container(settings=env.settings)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None
        self.consumer: OrderConsumer | None = None
        self.bus: EventBus | None = None

    async def __aenter__(self) -> OrderConsumer:
        self.bus = self.env.new_bus()
        self.container.orders_bus.override(self.bus)
        ingest = await self.container.orders_ingest()
        self.consumer = self.env.consumer(self.container, ingest, self.bus)
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self.consumer

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        assert self.bus is not None
        await asyncio.wait_for(self.task, 60)
        await self.bus.close()
        await self.container.shutdown_resources()  # type: ignore[misc]


CORRUPTIONS: dict[str, tuple[bytes, str, str]] = {
    "broken json": (SAMPLE[:-10], "malformed_json", ""),
    "non-utf-8 bytes": (SAMPLE.replace(b"Mascaras", b"Masc\xff\xferas"), "not_utf8", ""),
    "wrong type": (
        SAMPLE.replace(b'"amount": 1817', b'"amount": "1817"'),
        "invalid_order",
        "payment.amount",
    ),
    "missing field": (SAMPLE.replace(b'"locale": "en",', b""), "invalid_order", "locale"),
    "inconsistent totals": (
        SAMPLE.replace(b'"goods_total": 317', b'"goods_total": 316'),
        "invalid_order",
        "payment.goods_total",
    ),
    "bad email": (
        SAMPLE.replace(b"test@gmail.com", b"test-at-gmail"),
        "invalid_order",
        "delivery.email",
    ),
    "no items": (
        json.dumps(json.loads(SAMPLE) | {"items": []}).encode(),
        "invalid_order",
        "items",
    ),
    "not an object": (b'["order"]', "not_an_object", ""),
}


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

        by_payload: dict[bytes, dict[str, Any]] = {}
        for letter in env.dead:
            raw = (
                letter["payload"].encode()
                if letter["payload_encoding"] == "utf-8"
                else base64.b64decode(letter["payload"])
            )
            by_payload[raw] = letter
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

    async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
        cur = await conn.execute(
            "SELECT document::text FROM order_documents WHERE order_uid = %s",
            (f"e7-{env.settings.orders_group}",),
        )
        row = await cur.fetchone()
    assert row is not None
    assert json.loads(row[0]) == json.loads(valid[7])


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

    async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM items")
        row = await cur.fetchone()
    expected_items = sum(len(json.loads(p)["items"]) for p in first + second)
    assert row is not None
    assert row[0] == expected_items


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
    async with await psycopg.AsyncConnection.connect(env.pg_url) as conn:
        cur = await conn.execute("SELECT count(DISTINCT order_uid), count(*) FROM items")
        row = await cur.fetchone()
    assert row is not None
    assert row[0] == total
    assert row[1] == sum(len(example_document("x", i)["items"]) for i in range(total))
