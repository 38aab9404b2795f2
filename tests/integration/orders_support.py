"""What the order-ingest tests on real servers (and the chaos suite) share: ``Env`` (one broker
and one database, named with the test's ``unique`` token) with the broker-parametrized ``env``
fixture and ``orders_env``; ``Running`` (an in-process consumer), ``Worker`` (a
``consume-orders`` process); ``order`` and the ``CORRUPTIONS`` of the sample order; large
payloads; ``payload_of`` a dead letter; ``one_row`` of a query; ``app_settings``; and
``produce_on_nats`` (``hexmarket produce-orders`` run, what it published read back).

A test module uses the fixture by importing it: ``from tests.integration.orders_support import
env as env``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.nats_bus import NatsEventBus
from adapters.postgres.migrate import migrate
from core.contracts.orders import example_document
from core.orders.ingest import OrderConsumer
from core.ports.bus import Delivery, EventBus, OutgoingMessage
from core.retry import Backoff
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.support import ROOT, cli_output, run_cli

SAMPLE = (ROOT / "tests" / "data" / "model.json").read_bytes()


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
        (count,) = await one_row(self.pg_url, "SELECT count(*) FROM orders")
        return int(count)

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


async def orders_env(broker: str, pg_url: str, unique: str, server: str, **overrides: str) -> Env:
    """An ``Env`` on ``broker`` (NATS at URL ``server``, or Kafka at bootstrap ``server``) and
    the migrated database at ``pg_url``; ``overrides``: more or other ``HEXMARKET_*`` values."""
    await migrate(pg_url)
    values: dict[str, str] = {
        "HEXMARKET_POSTGRES_URL": pg_url,
        "HEXMARKET_ORDERS_STORE": "postgres",
        "HEXMARKET_ORDERS_BROKER": broker,
        "HEXMARKET_ORDERS_TOPIC": f"orders.{unique}",
        "HEXMARKET_ORDERS_STREAM": f"ORDERS_{unique.upper()}",
        "HEXMARKET_ORDERS_DLQ_TOPIC": f"orders.dlq.{unique}",
        "HEXMARKET_ORDERS_GROUP": f"orders-{unique}",
        "HEXMARKET_INGEST_BATCH_SIZE": "40",
        "HEXMARKET_INGEST_BATCH_MS": "50",
        "HEXMARKET_PG_POOL_SIZE": "4",
    }
    if broker == "nats":
        values["HEXMARKET_NATS_URL"] = server
    else:
        values["HEXMARKET_KAFKA_BOOTSTRAP_SERVERS"] = server
    values |= overrides
    return Env(broker, Settings(_env_file=None, **as_init(values)), values)


@pytest.fixture(params=["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
async def env(request: pytest.FixtureRequest, pg_url: str, unique: str) -> AsyncIterator[Env]:
    """One database and one broker (NATS JetStream, then Kafka) for the test."""
    server = request.getfixturevalue("nats_url" if request.param == "nats" else "kafka_bootstrap")
    environment = await orders_env(request.param, pg_url, unique, server)
    yield environment
    await environment.close()


def as_init(values: Mapping[str, str]) -> dict[str, Any]:
    """``Settings`` keyword arguments of ``HEXMARKET_*`` environment variables."""
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


def big_invalid_non_utf8() -> bytes:
    """~0.9 MB that is not UTF-8: its dead letter (base64) is ~1.2 MB, over both limits."""
    return b"\xff\xfe" + b"\x80" * (900_000)


def big_invalid_quotes(uid: str) -> bytes:
    """~0.95 MB of valid JSON, an invalid order (bad e-mail), full of quotes: JSON-escaping
    its payload in the envelope doubles it."""
    doc = json.loads(order(uid))
    doc["delivery"]["email"] = "not-an-email"
    doc["entry"] = '"' * 470_000
    return json.dumps(doc).encode()


def big_valid(uid: str) -> bytes:
    """A valid order of ~0.9 MB: 1000 items (the most allowed) with long names."""
    doc = json.loads(order(uid))
    item = doc["items"][0]
    doc["items"] = [item | {"name": "N" * 800, "rid": f"rid-{i}"} for i in range(1000)]
    payment = doc["payment"]
    payment["goods_total"] = item["total_price"] * 1000
    payment["amount"] = payment["goods_total"] + payment["delivery_cost"] + payment["custom_fee"]
    return json.dumps(doc).encode()


def payload_of(letter: dict[str, Any]) -> bytes:
    """The bytes of a dead letter's payload (``utf-8`` text or ``base64``)."""
    payload = letter["payload"]
    if letter["payload_encoding"] == "base64":
        return base64.b64decode(payload)
    return str(payload).encode()


async def one_row(pg_url: str, query: str, *params: Any) -> tuple[Any, ...]:
    """The first row of ``query`` on ``pg_url`` (the test fails if there is none)."""
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute(query, params or None)
        row = await cur.fetchone()
    assert row is not None, query
    return row


class Worker:
    """A ``consume-orders`` process, its JSON log lines in a file, read from outside."""

    def __init__(self, env: Env, log_path: Path) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            **env.env,
            "PYTHONPATH": str(ROOT / "src"),
            "HEXMARKET_LOG_JSON": "true",
        }
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.workers.orders_consumer"],
            env=environment,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line})
        return out

    def inserted_since(self, since: str) -> int:
        """Orders this process stored in batches logged at ``since`` (ISO time) or later."""
        return sum(
            int(e.get("inserted", 0))
            for e in self.events()
            if e.get("event", "").startswith("batch:") and e.get("ts", "") >= since
        )

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self._log.close()


def app_settings(pg_url: str, **overrides: Any) -> Settings:
    """The app on PostgreSQL's orders at ``pg_url``, everything else in memory; ``overrides``."""
    values: dict[str, Any] = {
        "postgres_url": pg_url,
        "catalog_store": "memory",
        "list_cache": "lru",
        "orders_store": "postgres",
        "orders_cache": "lru",
        "orders_broker": "memory",
        "events_broker": "memory",
        "log_store": "memory",
        "pg_pool_size": 4,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


async def produce_on_nats(
    nats_url: str, unique: str, data_dir: Path, count: int, *args: str, env: Mapping[str, str]
) -> tuple[str, list[Delivery]]:
    """``hexmarket produce-orders --count {count} *args`` to the NATS subject ``orders.{unique}``
    (``env`` plus the NATS settings; ``data_dir``: no running ``hexmarket dev`` is found), then
    what it published, read back by a fresh consumer: its output and the messages."""
    topic, stream = f"orders.{unique}", f"ORDERS_{unique.upper()}"
    values = {
        **env,
        "HEXMARKET_ORDERS_BROKER": "nats",
        "HEXMARKET_NATS_URL": nats_url,
        "HEXMARKET_ORDERS_TOPIC": topic,
        "HEXMARKET_ORDERS_STREAM": stream,
        "HEXMARKET_DATA_DIR": str(data_dir),
    }
    done = await asyncio.to_thread(
        run_cli, "produce-orders", "--count", str(count), *args, env=values
    )
    out = cli_output(done)
    bus = NatsEventBus(nats_url, streams={topic: stream})
    try:
        sub = await bus.subscribe(topic, f"reader-{unique}")
        got: list[Delivery] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(got) < count and loop.time() < deadline:
            got += await sub.fetch(count, 1.0)
        await sub.ack(got)
        await sub.close()
    finally:
        await bus.close()
    return out, got
