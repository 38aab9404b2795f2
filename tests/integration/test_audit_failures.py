"""Failure modes of the log writer on real servers, for both brokers:

- a ClickHouse insert that fails leaves its batch unacknowledged, and it is retried;
- a log writer killed with SIGKILL in the middle of a batch, then restarted, leaves every event
  in the log store exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import clickhouse_connect
import nats
import nats.js.errors
import pytest
from confluent_kafka import Consumer, TopicPartition

from adapters.clickhouse_log import ClickHouseLogStore
from adapters.kafka_bus import KafkaEventBus
from adapters.nats_bus import NatsEventBus, stream_for
from core.audit.logwriter import LogWriter
from core.catalog.events import GoodEvent
from core.contracts.logstore import event
from core.ports.audit import LogQuery
from core.ports.bus import EventBus, OutgoingMessage
from core.retry import Backoff
from tests.support import eventually

KAFKA_PARTITIONS = 6  # what the container's KafkaEventBus creates


@pytest.fixture(params=["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_url(request: pytest.FixtureRequest, broker: str) -> str:
    return str(request.getfixturevalue("nats_url" if broker == "nats" else "kafka_bootstrap"))


@pytest.fixture
async def bus(broker: str, broker_url: str) -> AsyncIterator[EventBus]:
    made: EventBus = (
        NatsEventBus(broker_url, ack_wait=3.0)
        if broker == "nats"
        else KafkaEventBus(broker_url, partitions=KAFKA_PARTITIONS)
    )
    yield made
    await made.close()


def acked_counter(
    broker: str, url: str, topic: str, group: str
) -> Callable[[], Awaitable[tuple[int, int | None]]]:
    """``(acknowledged, fetched but unacknowledged or None if the broker cannot tell)``, as
    the broker sees the group: JetStream's ack floor, or Kafka's committed offsets."""
    if broker == "nats":

        async def nats_count() -> tuple[int, int | None]:
            nc = await nats.connect(url)
            try:
                info = await nc.jetstream().consumer_info(stream_for(topic, {}), group)
                return int(info.ack_floor.stream_seq or 0), int(info.num_ack_pending or 0)
            except nats.js.errors.NotFoundError:  # the writer has not subscribed yet
                return 0, 0
            finally:
                await nc.close()

        return nats_count

    def committed() -> int:
        consumer = Consumer({"bootstrap.servers": url, "group.id": group})
        try:
            partitions = [TopicPartition(topic, p) for p in range(KAFKA_PARTITIONS)]
            offsets = consumer.committed(partitions, timeout=10)
            return sum(tp.offset for tp in offsets if tp.offset >= 0)
        finally:
            consumer.close()

    async def kafka_count() -> tuple[int, int | None]:
        return await asyncio.to_thread(committed), None

    return kafka_count


def messages(events: list[GoodEvent]) -> list[OutgoingMessage]:
    return [OutgoingMessage(data=e.to_json(), key=str(e.event_id)) for e in events]


async def test_a_failed_clickhouse_insert_leaves_the_batch_unacked_and_is_retried(
    broker: str, broker_url: str, bus: EventBus, clickhouse_url: str, unique: str
) -> None:
    topic, group = f"{unique}.events", f"{unique}-logs"
    store = ClickHouseLogStore(clickhouse_url, database=unique)
    await store.start()
    admin = clickhouse_connect.get_client(dsn=clickhouse_url)  # the same in-process engine
    table = f"`{unique}`.goods_events"
    # a real insert failure: the server refuses every row while this constraint exists
    admin.command(f"ALTER TABLE {table} ADD CONSTRAINT refuse_all CHECK Id < 0")
    events = [event(good_id=i + 1, seconds=i) for i in range(20)]
    await bus.publish(topic, messages(events))
    acked = acked_counter(broker, broker_url, topic, group)

    writer = LogWriter(
        bus,
        store,
        topic=topic,
        group=group,
        batch_size=100,
        batch_ms=100,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:

        async def failed_thrice() -> bool:
            return writer.stats.store_failures >= 3

        await eventually(failed_thrice, within=90, what="three failed inserts")
        assert writer.stats.written == 0
        done, in_hand = await acked()
        assert done == 0
        assert in_hand in (None, 20)
        assert await store.query() == []

        admin.command(f"ALTER TABLE {table} DROP CONSTRAINT refuse_all")

        async def all_acked() -> bool:
            return (await acked())[0] == 20

        await eventually(all_acked, within=90, what="the retried batch to be acknowledged")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await store.close()
    stored = await ClickHouseLogStore(clickhouse_url, database=unique).query(LogQuery(limit=1000))
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in events)
    assert writer.stats.batches == 1  # one batch, written once after the retries


READ_BACK = """
import asyncio, json, sys
from adapters.clickhouse_log import ClickHouseLogStore
from core.ports.audit import LogQuery
async def main():
    store = ClickHouseLogStore(sys.argv[1], database="audit")
    events = await store.query(LogQuery(limit=1000))
    await store.close()
    print(json.dumps([str(e.event_id) for e in events]))
asyncio.run(main())
"""


async def test_a_log_writer_killed_mid_batch_loses_and_duplicates_nothing(
    broker: str, broker_url: str, bus: EventBus, tmp_path: Path, unique: str
) -> None:
    topic, group = f"{unique}.events", f"{unique}-logs"
    # the writer runs in its own process with its own chDB engine path
    chdb_url = f"chdb://{tmp_path / 'chdb'}"
    env = {
        **os.environ,
        "HEXMARKET_EVENTS_BROKER": broker,
        "HEXMARKET_EVENTS_TOPIC": topic,
        "HEXMARKET_EVENTS_STREAM": stream_for(topic, {}),
        "HEXMARKET_EVENTS_GROUP": group,
        "HEXMARKET_LOG_STORE": "clickhouse",
        "HEXMARKET_CLICKHOUSE_URL": f"{chdb_url}?database=audit",
        "HEXMARKET_LOG_BATCH_SIZE": "100",
        "HEXMARKET_LOG_BATCH_MS": "60000",  # the second batch waits, in hand, for more events
        "HEXMARKET_NATS_ACK_WAIT": "3",
        "HEXMARKET_NATS_URL" if broker == "nats" else "KAFKA_BOOTSTRAP_SERVERS": broker_url,
    }
    acked = acked_counter(broker, broker_url, topic, group)
    first = [event(good_id=i + 1, seconds=i) for i in range(150)]
    await bus.publish(topic, messages(first))

    def spawn(name: str, **overrides: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "entrypoints.workers.logwriter"],
            env={**env, **overrides},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    writer = spawn("writer-1")
    try:

        async def first_batch_done() -> bool:
            assert writer.poll() is None, (tmp_path / "writer-1.log").read_text()
            done, in_hand = await acked()
            return done == 100 and in_hand in (None, 50)

        await eventually(first_batch_done, within=90, what="the first batch to be acknowledged")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert writer.returncode == -signal.SIGKILL

    second = [event(good_id=i + 1, seconds=200 + i) for i in range(150)]
    await bus.publish(topic, messages(second))
    restarted = spawn("writer-2", HEXMARKET_LOG_BATCH_MS="200")
    try:

        async def everything_acked() -> bool:
            assert restarted.poll() is None, (tmp_path / "writer-2.log").read_text()
            done, in_hand = await acked()
            return done == 300 and in_hand in (None, 0)

        await eventually(everything_acked, within=120, what="every event to be acknowledged")
    finally:
        restarted.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(restarted.wait, 30)
    assert code == 0, (tmp_path / "writer-2.log").read_text()

    read = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", READ_BACK, chdb_url],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    stored: list[Any] = json.loads(read.stdout.decode().strip().splitlines()[-1])
    assert len(stored) == len(set(stored)) == 300
    assert sorted(stored) == sorted(str(e.event_id) for e in [*first, *second])
