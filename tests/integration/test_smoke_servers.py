"""One real round trip per server, and the outage controls the other integration tests rely on."""

from __future__ import annotations

import time

import clickhouse_connect
import nats
import psycopg
import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Producer

from entrypoints.devstack import DevStack


def test_postgres_query(pg_url: str, unique: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT current_database(), current_setting('max_connections')"
        ).fetchone()
    assert row == (unique, "300")


def test_redis_set_get(redis_url: str, unique: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"{unique}:k", b"v", ex=60)
        assert client.get(f"{unique}:k") == b"v"
    finally:
        client.close()


async def test_nats_jetstream_publish_pull(nats_url: str, unique: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=unique.upper(), subjects=[f"{unique}.>"])
        ack = await js.publish(f"{unique}.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        dup = await js.publish(f"{unique}.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        assert dup.duplicate
        sub = await js.pull_subscribe(f"{unique}.x", durable="d")
        (msg,) = await sub.fetch(1, timeout=5)
        assert msg.data == b"hello"
        assert msg.metadata.sequence.stream == ack.seq
        await msg.ack()
        await js.delete_stream(unique.upper())
    finally:
        await nc.close()


@pytest.mark.kafka
def test_kafka_produce_consume(kafka_bootstrap: str, unique: str) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(unique, key=b"k", value=b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([unique])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            assert msg.value() == b"hello"
            consumer.commit(msg, asynchronous=False)
            break
        else:
            pytest.fail("no message consumed within 60s")
    finally:
        consumer.close()


def test_clickhouse_chdb(clickhouse_url: str, unique: str) -> None:
    client = clickhouse_connect.get_client(dsn=clickhouse_url)
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {unique}")
        client.command(
            f"CREATE TABLE {unique}.t (id UInt32, name String) ENGINE = MergeTree ORDER BY id"
        )
        client.insert(f"{unique}.t", [[1, "a"], [2, "b"]], column_names=["id", "name"])
        result = client.query(f"SELECT id, name FROM {unique}.t ORDER BY id")
        assert [tuple(r) for r in result.result_rows] == [(1, "a"), (2, "b")]
        client.command(f"DROP DATABASE {unique}")
    finally:
        client.close()


def test_postgres_stop_start_keeps_data_and_url(stack: DevStack, pg_url: str) -> None:
    if stack.is_external("postgres"):
        pytest.skip("postgres is external")
    server_url = stack.postgres_url()
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    stack.stop("postgres")
    assert not stack.is_running("postgres")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_url, connect_timeout=2).close()

    assert stack.start("postgres") == server_url
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]


def test_postgres_survives_a_crash(stack: DevStack, pg_url: str) -> None:
    if stack.is_external("postgres"):
        pytest.skip("postgres is external")
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (7)")

    stack.kill("postgres")
    stack.start("postgres")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(7,)]
