"""A role imports only what its settings select: the orders consumer on NATS never loads the
HTTP framework, ClickHouse, Redis or Kafka (most of its start-up time was those imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

PROBE = """
import asyncio, json, sys
from entrypoints.container import Container, close_container, resolve
from entrypoints.settings import Settings
import entrypoints.cli, entrypoints.workers.orders_consumer
settings = Settings(_env_file=None, orders_broker="nats", nats_url="nats://127.0.0.1:1",
                    orders_store="memory")
async def build():
    container = Container(settings=settings)
    await resolve(container.orders_bus())
    await resolve(container.orders_consumer())
    await close_container(container)
asyncio.run(build())
heavy = ("litestar", "clickhouse_connect", "redis", "confluent_kafka", "chdb")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_the_nats_orders_consumer_loads_no_http_framework_clickhouse_redis_or_kafka() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
        check=True,
        timeout=60,
    )
    assert json.loads(ran.stdout) == []
