"""The console script: help for every command, one-line errors for bad configuration."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints import probes, runtime
from entrypoints.cli import main
from entrypoints.logging import configure
from entrypoints.settings import Settings

COMMANDS = [
    "serve",
    "consume-orders",
    "relay-outbox",
    "write-logs",
    "migrate",
    "produce-orders",
    "dev",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HEXMARKET_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output  # stdout and stderr interleaved


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    code, output = _run(command, "--help")
    assert code == 0
    assert f"Usage: main {command}" in output or f"{command} [OPTIONS]" in output


def test_top_level_help_lists_the_commands() -> None:
    code, output = _run("--help")
    assert code == 0
    for command in COMMANDS:
        assert command in output


def test_invalid_setting_is_one_line_naming_the_variable() -> None:
    code, output = _run("serve", env={"HEXMARKET_HTTP_PORT": "99999"})
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: invalid configuration: HEXMARKET_HTTP_PORT")


def test_bad_url_scheme_is_rejected() -> None:
    code, output = _run("migrate", env={"HEXMARKET_POSTGRES_URL": "mysql://x"})
    assert code == 1
    assert "HEXMARKET_POSTGRES_URL: Value error, must start with postgresql://" in output


def test_missing_server_url_names_the_variable() -> None:
    code, output = _run("migrate")
    assert code == 1
    assert output.strip() == "error: migrate needs PostgreSQL: set HEXMARKET_POSTGRES_URL"


@pytest.mark.parametrize(
    ("command", "env", "label"),
    [
        (
            "migrate",
            {"HEXMARKET_POSTGRES_URL": "postgresql://app:pw@127.0.0.1:{port}/db"},
            "PostgreSQL",
        ),
        (
            "serve",
            {
                "HEXMARKET_POSTGRES_URL": "postgresql://app:pw@127.0.0.1:{port}/db",
                "HEXMARKET_LIST_CACHE": "lru",
                "HEXMARKET_LOG_STORE": "memory",
            },
            "PostgreSQL",
        ),
        (
            "write-logs",
            {"HEXMARKET_NATS_URL": "nats://127.0.0.1:{port}", "HEXMARKET_LOG_STORE": "memory"},
            "NATS",
        ),
        (
            "consume-orders",
            {
                "HEXMARKET_ORDERS_STORE": "memory",
                "HEXMARKET_ORDERS_BROKER": "kafka",
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:{port}",
            },
            "Kafka",
        ),
        ("produce-orders --count 1", {"HEXMARKET_NATS_URL": "nats://127.0.0.1:{port}"}, "NATS"),
        (
            "serve",
            {
                "HEXMARKET_CATALOG_STORE": "memory",
                "HEXMARKET_ORDERS_STORE": "memory",
                "HEXMARKET_LIST_CACHE": "redis",
                "HEXMARKET_REDIS_URL": "redis://127.0.0.1:{port}/0",
                "HEXMARKET_LOG_STORE": "memory",
            },
            "Redis",
        ),
    ],
)
def test_unreachable_server_is_one_line_naming_server_and_url(
    command: str, env: dict[str, str], label: str
) -> None:
    port = _closed_port()
    env = {key: value.format(port=port) for key, value in env.items()}
    code, output = _run(*command.split(), env=env)
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: cannot reach {label} at ")
    assert f":{port}" in lines[0]
    assert lines[0].endswith("connection refused")
    assert ":pw@" not in lines[0]


def test_mask_password() -> None:
    assert probes.mask_password("postgresql://u:p@h:1/d") == "postgresql://u:***@h:1/d"
    assert probes.mask_password("redis://h:1/0") == "redis://h:1/0"


def test_needed_servers_follow_the_adapter_choice() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        postgres_url="postgresql://h/d",
        redis_url="redis://h",
        nats_url="nats://h",
        kafka_bootstrap_servers="h:9092",
        clickhouse_url="http://h:8123",
        orders_broker="kafka",
    )
    names = lambda *roles: [d.name for d in probes.needed(settings, roles)]  # noqa: E731
    assert names("serve") == ["postgres", "redis", "clickhouse"]
    assert names("consume-orders") == ["postgres", "kafka"]
    assert names("relay-outbox") == ["postgres", "nats"]
    assert names("write-logs") == ["nats", "clickhouse"]
    assert names(*probes.ALL_ROLES) == ["postgres", "redis", "nats", "kafka", "clickhouse"]


def test_json_logs_are_one_object_per_line() -> None:
    stream = io.StringIO()
    configure("INFO", json_lines=True, stream=stream)
    try:
        logging.getLogger("hexmarket.test").info("batch written", extra={"events": 3})
        try:
            raise ValueError("boom\nline two")
        except ValueError:
            logging.getLogger("hexmarket.test").exception("failed")
    finally:
        configure("WARNING")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "batch written"
    assert first["events"] == 3
    assert first["level"] == "info"
    assert second["exc_type"] == "ValueError"


def test_text_logs_are_one_line_per_event() -> None:
    stream = io.StringIO()
    configure("INFO", stream=stream)
    try:
        logging.getLogger("x").warning("two\nlines", extra={"who": "a b"})
    finally:
        configure("WARNING")
    out = stream.getvalue()
    assert out.count("\n") == 1
    assert 'who="a b"' in out


async def test_run_tasks_stops_everything_when_one_task_fails() -> None:
    stopped: list[str] = []

    async def steady(stop: asyncio.Event) -> None:
        await stop.wait()
        stopped.append("steady")

    async def broken(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    code = await runtime.run_tasks({"steady": steady, "broken": broken}, asyncio.Event())
    assert code == 1
    assert stopped == ["steady"]


async def test_run_tasks_stops_groups_in_order() -> None:
    events: list[str] = []
    stop = asyncio.Event()

    def task(name: str):  # type: ignore[no-untyped-def]
        async def run(own_stop: asyncio.Event) -> None:
            await own_stop.wait()
            events.append(name)

        return run

    async def trigger(own_stop: asyncio.Event) -> None:
        stop.set()
        await own_stop.wait()

    code = await runtime.run_tasks(
        {"http": task("http"), "worker": task("worker"), "trigger": trigger},
        stop,
        order=[["worker"], ["http"]],
    )
    assert code == 0
    assert events == ["worker", "http"]


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("HEXMARKET_HTTP_PORT=9001\nHEXMARKET_LOG_LEVEL=debug\n")
    assert Settings().http_port == 9001
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("HEXMARKET_HTTP_PORT", "9002")
    assert Settings().http_port == 9002


def test_invalid_dotenv_value_is_reported_like_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HEXMARKET_ORDERS_BROKER=rabbitmq\n")
    code, output = _run("consume-orders")
    assert code == 1
    assert output.startswith("error: invalid configuration: HEXMARKET_ORDERS_BROKER: ")


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_port_in_use_is_one_line(command: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "HEXMARKET_HTTP_PORT": str(port),
            "HEXMARKET_CATALOG_STORE": "memory",
            "HEXMARKET_ORDERS_STORE": "memory",
            "HEXMARKET_LIST_CACHE": "lru",
            "HEXMARKET_LOG_STORE": "memory",
        }
        code, output = _run(command, env=env)
    assert code == 1
    assert output.strip() == (
        f"error: cannot listen on 127.0.0.1:{port} "
        "(HEXMARKET_HTTP_HOST/HEXMARKET_HTTP_PORT): address already in use"
    )


def test_serve_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop

    from entrypoints import cli

    loops: list[asyncio.AbstractEventLoop] = []

    async def fake_serve(settings: Settings) -> int:
        loops.append(asyncio.get_running_loop())
        return 0

    monkeypatch.setattr(cli, "_serve", fake_serve)
    code, output = _run("serve")
    assert code == 0, output
    assert len(loops) == 1
    assert isinstance(loops[0], uvloop.Loop)


def test_commands_find_a_running_dev_stack_and_the_environment_wins(tmp_path: Path) -> None:
    from entrypoints.cli import web_url, with_dev_stack
    from entrypoints.devstack import record_stack

    with socket.socket() as http:
        http.bind(("127.0.0.1", 0))
        http.listen()
        base = f"http://127.0.0.1:{http.getsockname()[1]}"
        nats = f"nats://127.0.0.1:{_closed_port()}"
        record_stack(
            tmp_path / ".hexmarket",
            {
                "nats_url": nats,
                "postgres_url": "postgresql://postgres@127.0.0.1:1/x",
                "http_url": base,
            },
        )
        found = with_dev_stack(Settings(_env_file=None))  # type: ignore[call-arg]
        assert found.nats_url == nats
        assert found.postgres_url == "postgresql://postgres@127.0.0.1:1/x"
        assert web_url(found) == base
        mine = with_dev_stack(Settings(_env_file=None, nats_url="nats://other:4222"))  # type: ignore[call-arg]
        assert mine.nats_url == "nats://other:4222"

        # the command itself reaches the recorded NATS (closed here: one line naming it)
        code, output = _run("produce-orders", "--count", "1")
        assert code == 1
        assert (
            output.strip().splitlines()[-1]
            == f"error: cannot reach NATS at {nats}: connection refused"
        )

        # a second `hexmarket dev` on the same data is refused in one line
        code, output = _run("dev")
        assert code == 1
        assert output.strip().startswith("error: hexmarket dev already runs on .hexmarket")

    # once the stack is gone, the command asks for the URL again
    code, output = _run("produce-orders", "--count", "1")
    assert output.strip().splitlines()[-1].startswith("error: produce-orders needs NATS")
