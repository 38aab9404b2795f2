"""The supervisor's own rules, with stand-in processes instead of servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.devstack import (
    STACK_FILE,
    DevStack,
    DevStackError,
    ServerStartError,
    forget_stack,
    record_stack,
    running_stack,
)
from entrypoints.devstack import Server as _Server

EXTERNAL = {
    "HEXMARKET_POSTGRES_URL": "postgresql://u@db:5432/x",
    "HEXMARKET_REDIS_URL": "redis://cache:6379/0",
    "HEXMARKET_NATS_URL": "nats://bus:4222",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "HEXMARKET_CLICKHOUSE_URL": "http://default:@ch:8123/default",
}


def test_external_servers_are_used_and_never_started(tmp_path: Path) -> None:
    with DevStack(tmp_path, env=EXTERNAL) as stack:
        assert stack.postgres_url() == EXTERNAL["HEXMARKET_POSTGRES_URL"]
        assert stack.redis_url() == EXTERNAL["HEXMARKET_REDIS_URL"]
        assert stack.nats_url() == EXTERNAL["HEXMARKET_NATS_URL"]
        assert stack.kafka_bootstrap() == "kafka:9092"
        assert stack.clickhouse_url() == EXTERNAL["HEXMARKET_CLICKHOUSE_URL"]
        assert stack.started() == {}
        assert stack.is_external("postgres")
        with pytest.raises(DevStackError, match="external"):
            stack.stop("postgres")


def test_the_prefixed_kafka_variable_wins(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "a:1", "HEXMARKET_KAFKA_BOOTSTRAP_SERVERS": "b:2"}
    with DevStack(tmp_path, env=env) as stack:
        assert stack.kafka_bootstrap() == "b:2"


def test_clickhouse_defaults_to_a_chdb_directory_in_the_workdir(tmp_path: Path) -> None:
    with DevStack(tmp_path, env={}) as stack:
        url = stack.clickhouse_url()
    assert url == f"chdb://{tmp_path.resolve() / 'clickhouse'}"
    assert url.startswith("chdb:///")


def test_controlling_a_server_never_started_is_an_error(tmp_path: Path) -> None:
    with DevStack(tmp_path, env={}) as stack, pytest.raises(DevStackError, match="never started"):
        stack.stop("redis")


def test_a_closed_stack_starts_nothing(tmp_path: Path) -> None:
    stack = DevStack(tmp_path, env={})
    stack.close()
    with pytest.raises(DevStackError, match="closed"):
        stack.redis_url()


class _Script(_Server):
    """A stand-in server: a Python one-liner, ready when a marker file exists."""

    name = "script"

    def __init__(self, home: Path, code: str, timeout: float = 10.0) -> None:
        super().__init__(home)
        self.code = code
        self.start_timeout = timeout

    def url(self) -> str:
        return f"script://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.code]

    def ready(self) -> bool:
        return (self.home / "ready").exists()


def test_a_server_that_exits_reports_its_code_and_log_tail(tmp_path: Path) -> None:
    server = _Script(tmp_path, "import sys; print('bad config line 3', flush=True); sys.exit(3)")
    with pytest.raises(ServerStartError) as info:
        server.start()
    message = str(info.value)
    assert "script failed to start: process exited with code 3" in message
    assert "bad config line 3" in message
    assert not server.running


def test_a_server_never_ready_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    server = _Script(tmp_path, "import time; time.sleep(60)", timeout=0.5)
    with pytest.raises(ServerStartError, match=r"not ready after"):
        server.start()
    assert server.proc is None


def test_stop_then_start_keeps_the_port(tmp_path: Path) -> None:
    server = _Script(tmp_path, "open('ready', 'w').close(); import time; time.sleep(60)")
    server.start()
    url = server.url()
    proc = server.proc
    assert proc is not None
    assert server.running
    server.stop()
    assert proc.poll() is not None
    assert not server.running
    (tmp_path / "ready").unlink()
    server.start()
    try:
        assert server.url() == url
        assert server.running
    finally:
        server.stop(kill=True)


def test_the_port_is_reused_by_the_next_stack_on_the_same_workdir(tmp_path: Path) -> None:
    first = _Script(tmp_path, "")
    second = _Script(tmp_path, "")
    assert first.port == second.port


# --- discovery: the record a running ``hexmarket dev`` leaves for the other commands ----------


def _listening() -> tuple[socket.socket, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_recorded_stack_is_found_while_its_process_serves(tmp_path: Path) -> None:
    sock, http_url = _listening()
    with sock:
        urls = {"nats_url": "nats://127.0.0.1:4222", "http_url": http_url}
        record_stack(tmp_path, urls)
        assert running_stack(tmp_path) == urls
        forget_stack(tmp_path)
    assert not (tmp_path / STACK_FILE).exists()
    assert running_stack(tmp_path) is None


def test_a_stale_record_is_ignored(tmp_path: Path) -> None:
    sock, http_url = _listening()
    with sock:
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        record_stack(tmp_path, {"http_url": http_url}, pid=int(gone.stdout))
        assert running_stack(tmp_path) is None  # its process is gone
    record_stack(tmp_path, {"http_url": http_url})
    assert running_stack(tmp_path) is None  # alive, but nothing serves there any more
    (tmp_path / STACK_FILE).write_text("{not json")
    assert running_stack(tmp_path) is None


def test_another_process_record_is_not_forgotten(tmp_path: Path) -> None:
    record_stack(tmp_path, {"http_url": "http://127.0.0.1:1"}, pid=os.getpid() + 1)
    forget_stack(tmp_path)
    assert (tmp_path / STACK_FILE).exists()
