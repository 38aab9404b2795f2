"""The metrics that read a server, on real servers: consumer lag per partition (Kafka) and
pending count (JetStream) exported by ``consume-orders``, and the age of the oldest unsent
outbox event exported by ``relay-outbox`` (PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrate import migrate
from adapters.postgres.outbox import PgOutboxRelay
from entrypoints.devstack import free_port
from tests.integration.orders_support import Env, order
from tests.integration.orders_support import env as env  # the broker-parametrized fixture
from tests.support import ROOT, eventually, stop_process

HEXMARKET = str(Path(sys.executable).with_name("hexmarket"))


def samples(body: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def scrape(port: int) -> str | None:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def spawn(command: str, values: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEXMARKET_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    environment |= values | {
        "HEXMARKET_METRICS_PORT": str(port),
        "HEXMARKET_METRICS_INTERVAL": "0.2",
        "HEXMARKET_HTTP_HOST": "127.0.0.1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [HEXMARKET, command], env=environment, cwd=log.parent, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        stop_process(proc, 30)


async def test_consumer_lag_is_measured_and_exported(env: Env, tmp_path: Path) -> None:
    s = env.settings
    # the group exists and is behind by every message: nothing consumed yet
    await env.producer.subscribe(s.orders_topic, s.orders_group)
    count = 90
    await env.publish([order(f"lag{i}-{s.orders_group}", i) for i in range(count)])
    await env.producer.close()
    env.producer = env.new_bus()
    lag = await env.producer.lag(s.orders_topic, s.orders_group)
    if env.broker == "kafka":
        assert len(lag) == 3, lag  # per partition
        assert all(partition.isdigit() for partition in lag)
    else:
        assert set(lag) == {""}
    assert sum(lag.values()) == count

    port = free_port()
    proc = spawn("consume-orders", env.env, port, tmp_path / "consumer.log")
    try:

        async def caught_up() -> bool:
            assert proc.poll() is None, (tmp_path / "consumer.log").read_text()
            body = await scrape(port)
            if body is None or await env.stored() < count:
                return False
            values = samples(body, "hexmarket_consumer_lag")
            mine = {k: v for k, v in values.items() if ("group", s.orders_group) in k}
            return bool(mine) and sum(mine.values()) == 0

        await eventually(caught_up, within=60, what="the exported lag back to 0 after ingest")
        body = await scrape(port)
        assert body is not None
        series = [
            dict(k)
            for k in samples(body, "hexmarket_consumer_lag")
            if ("group", s.orders_group) in k
        ]
        assert all(labels["topic"] == s.orders_topic for labels in series)
        if env.broker == "kafka":
            assert sorted(labels["partition"] for labels in series) == ["0", "1", "2"]
        assert samples(body, "hexmarket_orders_received_total")[()] == count
    finally:
        stop(proc)
    assert sum((await env.producer.lag(s.orders_topic, s.orders_group)).values()) == 0


async def test_the_age_of_the_oldest_unsent_outbox_event(
    pg_url: str, nats_url: str, unique: str, tmp_path: Path
) -> None:
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False) as pool:
        store = PgOutboxRelay(pool, pg_url)
        empty = await store.backlog()
        assert (empty.pending, empty.oldest_age) == (0, None)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, key, payload, created_at) VALUES"
                " (gen_random_uuid(), %s, 'k1', '{}', now() - interval '90 seconds'),"
                " (gen_random_uuid(), %s, 'k2', '{}', now() - interval '10 seconds')",
                (f"{unique}.events", f"{unique}.events"),
            )
        backlog = await store.backlog()
        assert backlog.pending == 2
        assert backlog.oldest_age is not None
        assert 90 <= backlog.oldest_age < 150

    port = free_port()
    values = {
        "HEXMARKET_POSTGRES_URL": pg_url,
        "HEXMARKET_NATS_URL": nats_url,
        "HEXMARKET_EVENTS_TOPIC": f"{unique}.events",
        "HEXMARKET_EVENTS_STREAM": f"{unique.upper()}_EVENTS",
        "HEXMARKET_TOPIC_MAX_BYTES": str(64 * 1024 * 1024),
    }
    proc = spawn("relay-outbox", values, port, tmp_path / "relay.log")
    try:

        async def relayed_and_exported() -> bool:
            assert proc.poll() is None, (tmp_path / "relay.log").read_text()
            body = await scrape(port)
            if body is None:
                return False
            age = samples(body, "hexmarket_outbox_oldest_unsent_age_seconds")
            backlog = samples(body, "hexmarket_outbox_backlog")
            return age.get(()) == 0.0 and backlog.get(()) == 0.0

        await eventually(
            relayed_and_exported, within=60, what="the relay exporting an empty outbox"
        )
    finally:
        stop(proc)
