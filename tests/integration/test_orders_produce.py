"""``hexmarket produce-orders`` against a real NATS JetStream server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from adapters.nats_bus import NatsEventBus
from core.orders.model import Order
from core.orders.parsing import parse_order

ROOT = Path(__file__).parents[2]


async def test_the_cli_publishes_demo_orders(nats_url: str, unique: str, tmp_path: Path) -> None:
    topic, stream = f"orders.{unique}", f"ORDERS_{unique.upper()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HEXMARKET_ORDERS_BROKER": "nats",
        "HEXMARKET_NATS_URL": nats_url,
        "HEXMARKET_ORDERS_TOPIC": topic,
        "HEXMARKET_ORDERS_STREAM": stream,
        "HEXMARKET_DATA_DIR": str(tmp_path),  # no running hexmarket dev is found
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "from entrypoints.cli import main; main()",
            "produce-orders",
            "--count",
            "120",
            "--invalid-share",
            "0.25",
            "--seed",
            "7",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert f"published 120 orders to NATS subject {topic}:" in out
    assert f"orders -> {topic}" not in out
    assert "open http://127.0.0.1:8080/order/" in out  # no dev stack here: the configured URL

    bus = NatsEventBus(nats_url, streams={topic: stream})
    try:
        sub = await bus.subscribe(topic, f"reader-{unique}")
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(got) < 120 and loop.time() < deadline:
            got += await sub.fetch(120, 1.0)
        await sub.ack(got)
        await sub.close()
    finally:
        await bus.close()
    assert len(got) == 120
    valid = sum(isinstance(parse_order(d.data), Order) for d in got)
    assert 60 <= valid < 120
    assert f"{valid} valid" in out
