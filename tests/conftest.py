"""Shared fixtures: real servers from one session-wide ``DevStack``, started on first use.

Unit tests ask for none of these, so they never start a server. Integration tests ask for URLs:

- ``stack``: the session's ``DevStack`` (``stop``/``kill``/``start`` simulate outages);
- ``pg_url``: a fresh, empty database per test (dropped afterwards); run migrations yourself;
- ``redis_url``, ``nats_url``, ``kafka_bootstrap``, ``clickhouse_url``: the session's servers,
  running again if an earlier test stopped them; namespace what you create with ``unique``;
- ``unique``: a short lowercase token (``t`` + 10 hex digits), distinct per test.

The contract suites' fixtures and the backends each suite runs on per tier come from
``tests/contracts.py`` (a plugin, registered below); the unit tests' app fixtures (``app_settings``,
``container``, ``client``) from ``tests/unit/conftest.py``; helpers that are not fixtures
(``memory_settings``, ``app_client``, ``eventually``...) from ``tests/support.py``. These names
are stable: new test modules should use them rather than define their own.

Servers given by environment variables (``HEXMARKET_POSTGRES_URL``, ``KAFKA_BOOTSTRAP_SERVERS``...)
are used instead of starting ones. A server that fails to start fails the test with its log tail;
outside CI a server that cannot exist here (no Java, no Maven...) skips the test instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import pytest
from psycopg import sql

from entrypoints.devstack import DevStack, ServerName, ServerStartError, ServerUnavailableError

# The contract suites and the backends each runs on, per tier.
pytest_plugins = ("tests.contracts",)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_stack_key = pytest.StashKey[DevStack]()

# JetStream reserves every stream's max_bytes against its store up front, and the tests create
# dozens of streams on one server: at the production default (1 GiB each) the store would run out
# partway through the session. Workers the tests start inherit this.
os.environ.setdefault("HEXMARKET_TOPIC_MAX_BYTES", str(64 * 1024**2))


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[DevStack]:
    """The session's servers; every one it started is stopped at the end of the session."""
    # Not under pytest's basetemp: every pytest run resets /tmp/pytest-of-<user> to 0700, which
    # would cut a concurrent run's Postgres (running as another user when we are root) off its
    # data directory.
    workdir = Path(tempfile.mkdtemp(prefix="hexmarket-devstack-"))
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # SIGTERM/SIGHUP (CI cancelling the job) unwind like Ctrl-C, so teardown stops servers.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _raise_keyboard_interrupt)
    devstack = DevStack(workdir)
    request.config.stash[_stack_key] = devstack
    try:
        yield devstack
    finally:
        devstack.close()
        shutil.rmtree(workdir, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_failures: dict[str, ServerStartError] = {}


def _server_url(stack: DevStack, name: ServerName, get: Callable[[], str]) -> str:
    """``get()``; a server that never started is tried once per session, then reported again."""
    failure = _failures.get(name)
    if failure is None:
        try:
            return get()
        except ServerStartError as exc:
            failure = exc
            if name not in stack.started():  # never came up: do not wait for it in every test
                _failures[name] = exc
    if isinstance(failure, ServerUnavailableError) and not IN_CI:
        pytest.skip(str(failure))
    pytest.fail(str(failure), pytrace=False)


@pytest.fixture
def unique() -> str:
    """A short unique lowercase token for keys, streams, subjects, topics, groups, databases."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url(stack: DevStack, unique: str) -> Iterator[str]:
    """DSN of a fresh empty database on the session's server, dropped after the test."""
    server_url = _server_url(stack, "postgres", stack.postgres_url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(unique)))
    yield psycopg.conninfo.make_conninfo(server_url, dbname=unique)
    # The test may have stopped the server: bring it back (later tests need it anyway).
    server_url = _server_url(stack, "postgres", stack.postgres_url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(unique))
        )


@pytest.fixture
def redis_url(stack: DevStack) -> str:
    """``redis://127.0.0.1:PORT/0`` of the session's server (shared: namespace with ``unique``)."""
    return _server_url(stack, "redis", stack.redis_url)


@pytest.fixture
def nats_url(stack: DevStack) -> str:
    """``nats://127.0.0.1:PORT`` with JetStream (shared: name streams with ``unique``)."""
    return _server_url(stack, "nats", stack.nats_url)


@pytest.fixture
def kafka_bootstrap(stack: DevStack) -> str:
    """``127.0.0.1:PORT`` of the session's broker (shared: name topics/groups with ``unique``)."""
    return _server_url(stack, "kafka", stack.kafka_bootstrap)


@pytest.fixture
def clickhouse_url(stack: DevStack) -> str:
    """The chDB DSN (one engine path per process) or ``HEXMARKET_CLICKHOUSE_URL``.

    Create your own database named with ``unique``.
    """
    return stack.clickhouse_url()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    devstack = config.stash.get(_stack_key, None)
    if devstack is None:
        return
    started = devstack.started()
    if started:
        times = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in started.items())
        terminalreporter.write_line(f"devstack: last start took {times} ({devstack.workdir})")
