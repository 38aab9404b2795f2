"""``hexmarket dev`` as a person runs it (``make run``): a subprocess that starts its own servers,
prints a banner whose URLs answer, serves the catalog and the orders, writes the audit log, stops
everything on SIGINT, and finds its data again on the next start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from adapters.nats_bus import NatsEventBus
from core.ports.bus import OutgoingMessage
from entrypoints.devstack import free_port
from tests.support import child_env, eventually_blocking

HEXMARKET = str(Path(sys.executable).with_name("hexmarket"))
MODEL = Path(__file__).resolve().parents[1] / "data" / "model.json"
START_DEADLINE = 180.0
T = TypeVar("T")


class DevProcess:
    """One ``hexmarket dev`` run: its stdout lines collected by a thread, the banner parsed."""

    def __init__(
        self, workdir: Path, port: int, log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HEXMARKET_") and k != "KAFKA_BOOTSTRAP_SERVERS"
        }
        env.update(
            HEXMARKET_DATA_DIR=str(workdir),
            HEXMARKET_HTTP_PORT=str(port),
            HEXMARKET_INGEST_BATCH_MS="50",
            HEXMARKET_LOG_BATCH_MS="50",
        )
        env.update(extra_env or {})
        self.workdir = workdir
        self.log = log
        self._stderr = log.open("a")
        self.proc = subprocess.Popen(
            [HEXMARKET, "dev"],
            env=env,
            cwd=workdir.parent,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,  # lets the test clean up the whole tree if it fails
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def banner(self) -> dict[str, str]:
        """``label -> value`` of the banner, once it is printed."""

        def parse() -> dict[str, str] | None:
            text = list(self.lines)
            if not any("Ctrl-C stops everything" in line for line in text):
                if self.proc.poll() is not None:
                    pytest.fail(f"hexmarket dev exited early:\n{self.output()}")
                return None
            rows: dict[str, str] = {}
            for line in text:
                match = re.match(r"^  (\S.*?)\s{2,}(\S.*)$", line)
                if match:
                    rows[match.group(1)] = match.group(2)
            return rows

        return wait_for(parse, START_DEADLINE, lambda: f"no banner:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.log.read_text()[-6000:]

    def tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            return []

    def interrupt(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            for process in reversed(self.tree()):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            self.proc.wait(10)
        self._stderr.close()


def wait_for(probe: Callable[[], T | None], deadline: float, message: Callable[[], str]) -> T:
    """``probe()``'s first value (``None``: not yet), polled for ``deadline`` seconds."""
    value = eventually_blocking(probe, within=deadline, what=message, interval=0.1)
    assert value is not None
    return value


def get_json(url: str, status: int = 200) -> Any | None:
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == status else None


def _events(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return [e for e in body if isinstance(e, dict)]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list):
                return [e for e in value if isinstance(e, dict)]
    return []


def _logged(base: str, good_id: int) -> list[dict[str, Any]] | None:
    body = get_json(f"{base}/logs?projectId=1&id={good_id}")
    found = [e for e in _events(body) if e.get("id") == good_id]
    return found or None


@pytest.fixture
def run_dev(tmp_path: Path) -> Iterator[Callable[..., DevProcess]]:
    started: list[DevProcess] = []
    workdir = tmp_path / ".hexmarket"  # the default data directory, seen from tmp_path
    port = free_port()

    def start(**extra_env: str) -> DevProcess:
        dev = DevProcess(workdir, port, tmp_path / f"dev-{len(started)}.log", extra_env)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.close()


def _order(uid: str) -> bytes:
    doc = json.loads(MODEL.read_text())
    doc["order_uid"] = uid
    return json.dumps(doc).encode()


async def _publish_order(nats_url: str, uid: str) -> None:
    bus = NatsEventBus(nats_url, streams={"orders": "ORDERS"})
    try:
        await bus.publish("orders", [OutgoingMessage(data=_order(uid), key=uid)])
    finally:
        await bus.close()


def dev_cwd(dev: DevProcess) -> Path:
    """The directory ``hexmarket dev`` was started in (its data is ``./.hexmarket``)."""
    return dev.workdir.parent


def _assert_tree_gone(processes: list[psutil.Process]) -> None:
    def gone() -> bool | None:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return True if not alive else None

    wait_for(gone, 30, lambda: f"processes left running: {processes}")


def test_dev_runs_everything_and_stops_cleanly(
    run_dev: Callable[..., DevProcess], unique: str
) -> None:
    dev = run_dev()
    banner = dev.banner()
    base = banner["web page"].rstrip("/")
    for label in ("Swagger UI", "metrics", "PostgreSQL", "Redis", "NATS", "ClickHouse"):
        assert label in banner, (label, banner)
    assert banner["workers"] == "consume-orders, relay-outbox, write-logs", dev.output()

    ready = wait_for(lambda: get_json(f"{base}/ready"), 60, lambda: f"not ready:\n{dev.output()}")
    assert set(ready["checks"]) == {"postgres", "redis", "nats", "clickhouse"}
    for url in (banner["web page"], banner["Swagger UI"], banner["metrics"]):
        assert httpx.get(url, timeout=5).status_code == 200, url

    created = httpx.post(f"{base}/good/create?projectId=1", json={"name": unique}, timeout=5)
    assert created.status_code == 200, created.text
    good = created.json()
    listed = httpx.get(f"{base}/goods/list?limit=1000", timeout=5).json()
    assert good["id"] in [g["id"] for g in listed["goods"]]

    order_uid = f"dev{unique}"
    asyncio.run(_publish_order(banner["NATS"], order_uid))
    order = wait_for(
        lambda: get_json(f"{base}/order/{order_uid}"),
        60,
        lambda: f"order not served:\n{dev.output()}",
    )
    assert order["order_uid"] == order_uid

    # the README's example order is there on a fresh stack
    sample = get_json(f"{base}/order/b563feb7b2b84b6test")
    assert sample is not None, dev.output()
    assert sample["track_number"] == "WBILMTESTTRACK"

    # a second terminal, as the README says: no URL copied, the running stack is found
    produced = subprocess.run(
        [HEXMARKET, "produce-orders", "--count", "3", "--seed", "7"],
        env=child_env(),  # a fresh terminal: no server URL, no data directory set
        cwd=dev_cwd(dev),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert produced.returncode == 0, produced.stderr
    assert "published 3 orders to NATS subject orders: 3 valid" in produced.stdout
    assert "orders -> orders" not in produced.stdout + produced.stderr
    lookup = re.search(r"^open (http://\S+/order/\S+)$", produced.stdout, re.MULTILINE)
    assert lookup, produced.stdout
    assert lookup.group(1).startswith(base + "/order/")
    wait_for(
        lambda: get_json(lookup.group(1)),
        60,
        lambda: f"produced order not served:\n{dev.output()}",
    )

    events = wait_for(
        lambda: _logged(base, good["id"]), 60, lambda: f"no audit event:\n{dev.output()}"
    )
    assert events[0]["name"] == unique

    metrics = httpx.get(banner["metrics"], timeout=5).text
    for series in (
        "hexmarket_orders_ingested_total",
        "hexmarket_outbox_published_total",
        "hexmarket_log_batches_written_total",
        'hexmarket_cache_misses_total{cache="goods_list"}',
        'hexmarket_http_request_duration_seconds_count{method="POST",route="/good/create",status="200"}',
    ):
        assert re.search(rf"^{re.escape(series)} [1-9]", metrics, re.MULTILINE), (series, metrics)
    assert re.search(r"^hexmarket_outbox_backlog 0", metrics, re.MULTILINE), metrics

    tree = dev.tree()
    assert len(tree) >= 4  # dev itself + PostgreSQL (and its backends) + Redis + NATS
    assert dev.interrupt() == 0, dev.output()
    _assert_tree_gone(tree)
    assert not (dev.workdir / "stack.json").exists()  # a stopped stack is not found
    assert "servers stopped" in dev.log.read_text()

    # the data is still there on the next start (same work directory)
    again = run_dev()
    base = again.banner()["web page"].rstrip("/")
    wait_for(lambda: get_json(f"{base}/ready"), 60, lambda: f"not ready again:\n{again.output()}")
    listed = httpx.get(f"{base}/goods/list?limit=1000", timeout=5).json()
    assert good["id"] in [g["id"] for g in listed["goods"]]
    assert get_json(f"{base}/order/{order_uid}") is not None
    assert _logged(base, good["id"])
    tree = again.tree()
    assert again.interrupt() == 0, again.output()
    _assert_tree_gone(tree)


@pytest.mark.kafka
def test_dev_takes_orders_from_kafka_when_configured(run_dev: Callable[..., DevProcess]) -> None:
    dev = run_dev(HEXMARKET_ORDERS_BROKER="kafka")
    banner = dev.banner()
    assert "Kafka" in banner, dev.output()
    base = banner["web page"].rstrip("/")
    ready = wait_for(lambda: get_json(f"{base}/ready"), 90, lambda: f"not ready:\n{dev.output()}")
    assert "kafka" in ready["checks"]
    produced = subprocess.run(
        [HEXMARKET, "produce-orders", "--count", "3", "--seed", "11"],
        env=child_env(HEXMARKET_ORDERS_BROKER="kafka"),  # the broker found
        cwd=dev_cwd(dev),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    lookup = re.search(r"^open (http://\S+/order/\S+)$", produced.stdout, re.MULTILINE)
    assert lookup, produced.stdout
    wait_for(
        lambda: get_json(lookup.group(1)),
        90,
        lambda: f"order from Kafka not served:\n{dev.output()}",
    )
    tree = dev.tree()
    assert dev.interrupt() == 0, dev.output()
    _assert_tree_gone(tree)
