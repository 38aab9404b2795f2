"""The audit trail under chaos, on real servers, for each broker: thousands of catalog changes
over HTTP (creates, updates, removes and reprioritizes that shift hundreds of goods each) while
the outbox relay and the log writer processes are killed with SIGKILL in turn every second or
so and started again. Checked from outside the processes at the end: every outbox event is in
ClickHouse exactly once (what ``GET /logs`` reads), the outbox has nothing unsent and the log
writer's group has lag 0, within ``CONVERGE_WITHIN`` seconds of the last kill."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.nats_bus import stream_for
from adapters.postgres.migrate import migrate
from entrypoints.container import Container
from entrypoints.http.app import create_app
from tests.chaos import figures
from tests.chaos.lag import lag
from tests.integration.orders_support import app_settings
from tests.support import ROOT, eventually

CHANGES = 1500
KILL_EVERY = 1.2
KAFKA_PARTITIONS = 6  # what the container's KafkaEventBus creates
CONVERGE_WITHIN = 60.0

READ_BACK = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
rows = client.query("SELECT toString(EventId) FROM audit.goods_events FINAL").result_rows
raw = client.query("SELECT count() FROM audit.goods_events").result_rows[0][0]
print(json.dumps({"ids": [r[0] for r in rows], "raw": raw}))
"""


@pytest.fixture(params=["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Worker:
    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module], env=env, cwd=ROOT, stdout=out, stderr=out
            )

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


async def _changes(client: AsyncTestClient[Any], project: int, rng: random.Random) -> int:
    """``CHANGES`` writes in one project, one at a time (concurrent writes are issue 10's test).
    Returns how many goods they shifted by reprioritizing."""
    live: list[int] = []
    for i in range(CHANGES):
        roll = rng.random()
        if not live or roll < 0.45:
            response = await client.post(
                f"/good/create?projectId={project}", json={"name": f"g{i}"}
            )
            assert response.status_code == 200, response.text
            live.append(response.json()["id"])
        elif roll < 0.78:
            good = rng.choice(live)
            response = await client.patch(
                f"/good/update?id={good}&projectId={project}",
                json={"name": f"renamed {i}", "description": f"change {i}"},
            )
            assert response.status_code == 200, response.text
        elif roll < 0.96:
            good = live.pop(rng.randrange(len(live)))
            response = await client.delete(f"/good/remove?id={good}&projectId={project}")
            assert response.status_code == 200, response.text
        else:
            good = rng.choice(live)
            response = await client.patch(
                f"/good/reprioritize?id={good}&projectId={project}", json={"newPriority": 1}
            )
            assert response.status_code == 200, response.text
    return len(live)


async def _change_catalog(pg_url: str, topic: str, seed: str) -> int:
    """The changes through the HTTP app; each outbox row names ``topic`` (the app's setting)."""
    settings = app_settings(pg_url, catalog_store="postgres", events_topic=topic)
    container = Container(settings=settings)
    async with AsyncTestClient(create_app(container)) as client:
        return await _changes(client, 1, random.Random(seed))


async def test_every_catalog_change_reaches_clickhouse_once_while_workers_are_killed(
    broker: str, pg_url: str, unique: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await migrate(pg_url)
    url = request.getfixturevalue("nats_url" if broker == "nats" else "kafka_bootstrap")
    topic, group = f"{unique}.goods.events", f"{unique}-logs"
    stream = stream_for(topic, {})
    chdb = f"chdb://{tmp_path / 'chdb'}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HEXMARKET_POSTGRES_URL": pg_url,
        "HEXMARKET_CATALOG_STORE": "postgres",
        "HEXMARKET_EVENTS_BROKER": broker,
        "HEXMARKET_EVENTS_TOPIC": topic,
        "HEXMARKET_EVENTS_STREAM": stream,
        "HEXMARKET_EVENTS_GROUP": group,
        "HEXMARKET_LOG_STORE": "clickhouse",
        "HEXMARKET_CLICKHOUSE_URL": f"{chdb}?database=audit",
        "HEXMARKET_LOG_BATCH_MS": "200",
        "HEXMARKET_RELAY_IDLE_MS": "100",
        "HEXMARKET_NATS_ACK_WAIT": "3",
        "HEXMARKET_PG_POOL_SIZE": "2",
        "HEXMARKET_NATS_URL" if broker == "nats" else "KAFKA_BOOTSTRAP_SERVERS": url,
    }
    modules = {"relay": "entrypoints.workers.relay", "writer": "entrypoints.workers.logwriter"}
    workers = {name: Worker(m, env, tmp_path / f"{name}.log") for name, m in modules.items()}
    kills = 0
    try:
        # The HTTP app runs on a loop of its own: a test client calls it without yielding, which
        # would starve the kills scheduled on this loop.
        changing = asyncio.create_task(
            asyncio.to_thread(asyncio.run, _change_catalog(pg_url, topic, unique))
        )
        victim = "relay"
        while not changing.done():
            await asyncio.sleep(KILL_EVERY)
            worker = workers[victim]
            assert worker.process.poll() is None, worker.tail()
            worker.process.kill()
            await asyncio.to_thread(worker.process.wait, 10)
            workers[victim] = Worker(modules[victim], env, worker.log)
            kills += 1
            victim = "writer" if victim == "relay" else "relay"
        await changing
        last_kill = time.monotonic()

        async def drained() -> bool:
            for worker in workers.values():
                assert worker.process.poll() is None, worker.tail()
            async with await psycopg.AsyncConnection.connect(pg_url) as conn:
                cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                row = await cur.fetchone()
            assert row is not None
            return (
                row[0] == 0
                and await lag(
                    broker, url, stream if broker == "nats" else topic, group, KAFKA_PARTITIONS
                )
                == 0
            )

        await eventually(drained, within=CONVERGE_WITHIN, what="the outbox relayed and logged")
        recovered = time.monotonic() - last_kill
        for worker in workers.values():
            worker.process.terminate()
        for worker in workers.values():
            code = await asyncio.to_thread(worker.process.wait, 15)
            assert code == 0, worker.tail()
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(10)

    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute("SELECT event_id::text FROM outbox")
        outbox = [str(row[0]) for row in await cur.fetchall()]
    read = subprocess.run(  # noqa: ASYNC221 - the workers are stopped: nothing else to do
        [sys.executable, "-c", READ_BACK, chdb],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    logged = json.loads(read.stdout)
    assert len(outbox) > CHANGES  # reprioritizing shifted goods: more events than requests
    assert sorted(logged["ids"]) == sorted(outbox)  # each once: FINAL keeps one copy per event
    figures.record(
        figures.Row(
            run=f"audit on {broker}, relay + log writer",
            produced=f"{len(outbox)} events from {CHANGES} changes",
            stored=len(logged["ids"]),
            lost=len(set(outbox) - set(logged["ids"])),
            duplicated=len(logged["ids"]) - len(set(logged["ids"])),
            dead_lettered=f"- ({logged['raw'] - len(outbox)} copies merged)",
            kills=kills,
            refused_starts=0,
            outages="-",
            recovered_s=recovered,
        )
    )
