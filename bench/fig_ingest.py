"""Orders ingest end to end (broker -> hexmarket consumer -> Postgres) against the ceiling:
psycopg COPY of the same orders into the same four tables, 1,000 orders per transaction."""

from __future__ import annotations

import asyncio
import subprocess

from bench.context import Bench
from bench.copy_orders import load_orders
from bench.data import order_messages
from bench.hexmarket import require_module, worker_argv
from bench.procs import Child, ProcessError, gated_run
from bench.report import Figure
from bench.stats import Stat, Target

__all__ = ["ingest_kafka", "ingest_nats", "load_orders"]


def _consume(bench: Bench, name: str, env: dict[str, str], expect: int) -> float:
    """Seconds from the consumer's start to the last of ``expect`` orders committed."""
    child = Child(
        name,
        [*worker_argv("consume-orders"), "--expect", str(expect), "--count", "orders"],
        env=env,
        log_dir=bench.logs,
        stdin=subprocess.PIPE,
    )
    try:
        return gated_run(child, timeout_s=600)
    finally:
        child.stop()


def _ceiling(bench: Bench, messages: list[bytes]) -> float:
    dsn = bench.fresh_database("copy")
    seconds = load_orders(dsn, messages, batch=bench.sizes.copy_batch)
    return len(messages) / seconds


def _figure(key: str, title: str, hex_rates: Stat, copy_rates: Stat | None, note: str) -> Figure:
    return Figure(
        key=key,
        title=title,
        unit="orders/s",
        hexmarket=hex_rates,
        ceiling=copy_rates,
        ceiling_label="psycopg COPY, 1,000 orders per transaction",
        target=Target(op=">=", value=0.6),
        note=note,
    )


def _produce_kafka(bootstrap: str, topic: str, messages: list[bytes]) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=3)]).values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all", "enable.idempotence": True}
    )
    for n, message in enumerate(messages):
        while True:
            try:
                producer.produce(topic, message, key=str(n).encode())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise ProcessError("Kafka producer could not deliver every order")


def ingest_kafka(bench: Bench) -> list[Figure]:
    require_module("entrypoints.workers.orders_consumer", "the orders consumer")
    count = bench.sizes.ingest_orders
    messages = order_messages(count, run="k")
    topic = bench.token("bench-orders-")
    bootstrap = bench.stack.kafka_bootstrap()
    _produce_kafka(bootstrap, topic, messages)

    def hexmarket() -> float:
        env = bench.env(
            HEXMARKET_POSTGRES_URL=bench.fresh_database("kafka"),
            HEXMARKET_ORDERS_BROKER="kafka",
            HEXMARKET_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            HEXMARKET_ORDERS_TOPIC=topic,
            HEXMARKET_ORDERS_DLQ_TOPIC=f"{topic}.dlq",
            HEXMARKET_ORDERS_GROUP=bench.token("bench-group-"),
        )
        return count / _consume(bench, "consume-kafka", env, count)

    hex_rates, copy_rates = bench.alternate(hexmarket, lambda: _ceiling(bench, messages))
    return [
        _figure(
            "ingest-kafka",
            f"orders ingest Kafka -> Postgres ({count:,} orders)",
            hex_rates,
            copy_rates,
            "consumer start to last order committed; fresh group and database per run",
        )
    ]


async def _publish_nats(url: str, stream: str, subject: str, messages: list[bytes]) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=1000)
        await js.add_stream(name=stream, subjects=[subject])
        for n, message in enumerate(messages):
            await js.publish_async(subject, message, headers={"Nats-Msg-Id": f"o{n}"})
        await asyncio.wait_for(js.publish_async_completed(), 60)
    finally:
        await nc.close()


def ingest_nats(bench: Bench) -> list[Figure]:
    require_module("entrypoints.workers.orders_consumer", "the orders consumer")
    count = bench.sizes.ingest_orders
    messages = order_messages(count, run="n")
    stream = bench.token("BENCH_ORDERS_")
    subject = f"bench.{stream.lower()}"
    url = bench.stack.nats_url()
    asyncio.run(_publish_nats(url, stream, subject, messages))

    def hexmarket() -> float:
        env = bench.env(
            HEXMARKET_POSTGRES_URL=bench.fresh_database("nats"),
            HEXMARKET_ORDERS_BROKER="nats",
            HEXMARKET_ORDERS_TOPIC=subject,
            HEXMARKET_ORDERS_STREAM=stream,
            HEXMARKET_ORDERS_DLQ_TOPIC=f"{subject}.dlq",
            HEXMARKET_ORDERS_GROUP=bench.token("bench-durable-"),
        )
        return count / _consume(bench, "consume-nats", env, count)

    hex_rates, copy_rates = bench.alternate(hexmarket, lambda: _ceiling(bench, messages))
    return [
        _figure(
            "ingest-nats",
            f"orders ingest NATS JetStream -> Postgres ({count:,} orders)",
            hex_rates,
            copy_rates,
            "consumer start to last order committed; fresh durable and database per run",
        )
    ]
