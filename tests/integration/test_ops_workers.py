"""The worker commands as separate processes on real servers: they check their servers, expose
their metrics on HEXMARKET_METRICS_PORT, log JSON lines, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.postgres.migrate import migrate
from entrypoints.devstack import free_port
from tests.support import answering, child_env

HEXMARKET = str(Path(sys.executable).with_name("hexmarket"))


@pytest.mark.parametrize(
    ("command", "series"),
    [
        ("consume-orders", "hexmarket_orders_ingested_total"),
        ("relay-outbox", "hexmarket_outbox_published_total"),
        ("write-logs", "hexmarket_log_batches_written_total"),
    ],
)
def test_worker_serves_metrics_and_stops_on_sigterm(
    command: str, series: str, pg_url: str, nats_url: str, unique: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(pg_url))
    port = free_port()
    env = child_env(
        HEXMARKET_POSTGRES_URL=pg_url,
        HEXMARKET_NATS_URL=nats_url,
        HEXMARKET_CLICKHOUSE_URL=f"chdb://{tmp_path / 'clickhouse'}",
        HEXMARKET_METRICS_PORT=str(port),
        HEXMARKET_HTTP_HOST="127.0.0.1",
        HEXMARKET_LOG_JSON="true",
        HEXMARKET_ORDERS_TOPIC=f"{unique}.orders",
        HEXMARKET_ORDERS_STREAM=f"{unique.upper()}_ORDERS",
        HEXMARKET_ORDERS_DLQ_TOPIC=f"{unique}.orders.dlq",
        HEXMARKET_ORDERS_GROUP=f"{unique}-orders",
        HEXMARKET_EVENTS_TOPIC=f"{unique}.events",
        HEXMARKET_EVENTS_STREAM=f"{unique.upper()}_EVENTS",
        HEXMARKET_EVENTS_GROUP=f"{unique}-logs",
    )
    log_path = tmp_path / f"{command}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [HEXMARKET, command], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            body = answering(url, proc, log_path, within=60, interval=0.1).text
            assert series in body
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    lines = log_path.read_text().splitlines()
    assert lines
    events = [json.loads(line) for line in lines]  # one JSON object per line
    assert any(event["event"] == "stop requested" for event in events), lines
