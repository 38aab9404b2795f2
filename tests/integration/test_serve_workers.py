"""``hexmarket serve --workers N`` as a real process tree: N workers share the port, SIGTERM
stops them all and exits 0, and a worker that dies takes the others down with a non-zero exit
(an orchestrator restarts the whole; a half-alive server never lingers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import eventually_blocking

ROOT = Path(__file__).parents[2]
HEXMARKET = ROOT / ".venv" / "bin" / "hexmarket"
MEMORY = {
    "HEXMARKET_CATALOG_STORE": "memory",
    "HEXMARKET_LIST_CACHE": "lru",
    "HEXMARKET_ORDERS_STORE": "memory",
    "HEXMARKET_ORDERS_CACHE": "lru",
    "HEXMARKET_ORDERS_BROKER": "memory",
    "HEXMARKET_EVENTS_BROKER": "memory",
    "HEXMARKET_LOG_STORE": "memory",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(HEXMARKET), "serve", "--workers", "2", "--port", str(port)],
            env={**os.environ, **MEMORY},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    pass
            except OSError:
                return False
            return len(psutil.Process(proc.pid).children()) == 2

        eventually_blocking(healthy, within=30, what="two workers answering")
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_two_workers_share_the_port_and_sigterm_stops_them_all(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = served
    workers = psutil.Process(proc.pid).children()
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            assert response.status == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, log.read_text()
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


def test_a_dead_worker_stops_the_others_and_the_server_exits_non_zero(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, _port, log = served
    first, second = psutil.Process(proc.pid).children()
    first.kill()
    assert proc.wait(15) != 0, log.read_text()
    _gone, alive = psutil.wait_procs([second], timeout=5)
    assert alive == []
    assert "HTTP worker exited" in log.read_text()
