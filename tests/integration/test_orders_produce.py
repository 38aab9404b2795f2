"""``hexmarket produce-orders`` against a real NATS JetStream server."""

from __future__ import annotations

import os
from pathlib import Path

from core.orders.model import Order
from core.orders.parsing import parse_order
from tests.integration.orders_support import produce_on_nats


async def test_the_cli_publishes_demo_orders(nats_url: str, unique: str, tmp_path: Path) -> None:
    topic = f"orders.{unique}"
    out, got = await produce_on_nats(
        nats_url,
        unique,
        tmp_path,  # no running hexmarket dev is found
        120,
        "--invalid-share",
        "0.25",
        "--seed",
        "7",
        env=os.environ,
    )
    assert f"published 120 orders to NATS subject {topic}:" in out
    assert f"orders -> {topic}" not in out
    assert "open http://127.0.0.1:8080/order/" in out  # no dev stack here: the configured URL
    assert len(got) == 120
    valid = sum(isinstance(parse_order(d.data), Order) for d in got)
    assert 60 <= valid < 120
    assert f"{valid} valid" in out
