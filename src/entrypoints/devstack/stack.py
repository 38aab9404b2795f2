"""``DevStack``: the servers of one work directory, each started on first use, external ones
taken from environment variables, all stopped on ``close()`` (also at interpreter exit)."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, get_args

from entrypoints.devstack.clickhouse import chdb_url
from entrypoints.devstack.kafka import DEFAULT_KAFKA_JARS, Kafka
from entrypoints.devstack.nats import Nats
from entrypoints.devstack.postgres import Postgres
from entrypoints.devstack.process import DevStackError, Server
from entrypoints.devstack.redis import Redis

ServerName = Literal["postgres", "redis", "nats", "kafka"]
SERVER_NAMES: Final[tuple[ServerName, ...]] = get_args(ServerName)

#: Environment variables naming external servers; the first one set wins.
ENV_VARS: Final[Mapping[str, tuple[str, ...]]] = {
    "postgres": ("HEXMARKET_POSTGRES_URL",),
    "redis": ("HEXMARKET_REDIS_URL",),
    "nats": ("HEXMARKET_NATS_URL",),
    "kafka": ("HEXMARKET_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    "clickhouse": ("HEXMARKET_CLICKHOUSE_URL",),
}


def _close_at_exit(ref: weakref.ReferenceType[DevStack]) -> Callable[[], None]:
    def close() -> None:
        stack = ref()
        if stack is not None:
            stack.close()

    return close


class DevStack:
    """The servers of one work directory; external ones come from environment variables.

    Thread-safe; each accessor starts its server on first use and returns its URL.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        kafka_jars: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        source = os.environ if env is None else env
        self.external: dict[str, str] = {}
        for name, variables in ENV_VARS.items():
            for variable in variables:
                value = source.get(variable)
                if value:
                    self.external[name] = value
                    break
        jars = kafka_jars or Path(source.get("HEXMARKET_KAFKA_JARS") or DEFAULT_KAFKA_JARS)
        self._kafka_jars = jars.resolve()
        self._servers: dict[str, Server] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._atexit = _close_at_exit(weakref.ref(self))
        atexit.register(self._atexit)

    # --- URLs (each starts its server on first call) ---------------------------------------

    def postgres_url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth, user ``postgres``)."""
        return self._url("postgres")

    def redis_url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return self._url("redis")

    def nats_url(self) -> str:
        """``nats://127.0.0.1:PORT`` with JetStream enabled."""
        return self._url("nats")

    def kafka_bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of a single-node KRaft broker (auto-creates topics, 3 partitions)."""
        return self._url("kafka")

    def clickhouse_url(self) -> str:
        """``HEXMARKET_CLICKHOUSE_URL`` if set, else ``chdb:///<workdir>/clickhouse``.

        chDB allows one engine path per process: use this DSN for every client in the process.
        """
        return self.external.get("clickhouse") or chdb_url(self.workdir)

    # --- control -------------------------------------------------------------------------

    def ensure(self, *names: ServerName) -> dict[str, str]:
        """Start several servers at once (in parallel); returns their URLs by name.

        Without names: every server. The first failure is raised after all attempts ended.
        """
        wanted = names or SERVER_NAMES
        urls: dict[str, str] = {}
        errors: list[BaseException] = []

        def one(name: ServerName) -> None:
            try:
                urls[name] = self._url(name)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(name,)) for name in wanted]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        urls["clickhouse"] = self.clickhouse_url()
        return urls

    def is_external(self, name: str) -> bool:
        """``True`` if the server is given by an environment variable (and not controlled)."""
        return name in self.external

    def start(self, name: ServerName) -> str:
        """Start ``name`` (again) on its port and data directory; returns its URL."""
        return self._url(name)

    def stop(self, name: ServerName) -> None:
        """Stop ``name`` gracefully (its data stays; ``start`` brings it back on the same port)."""
        self._server_for_control(name).stop()

    def kill(self, name: ServerName) -> None:
        """SIGKILL ``name`` and its children: a crash (``start`` brings it back)."""
        self._server_for_control(name).stop(kill=True)

    def is_running(self, name: ServerName) -> bool:
        with self._lock:
            server = self._servers.get(name)
            return server is not None and server.running

    def started(self) -> dict[str, float]:
        """Seconds each server took to its last successful start, by name."""
        with self._lock:
            return {
                name: server.started_seconds
                for name, server in self._servers.items()
                if server.started_seconds is not None
            }

    def log_path(self, name: ServerName) -> Path:
        """The server's log file (stdout and stderr; Kafka's own log is ``kafka.log`` beside)."""
        return self._server(name).log_path

    def close(self) -> None:
        """Stop every server this stack started, the last started first."""
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
        errors: list[BaseException] = []
        for server in reversed(servers):
            try:
                server.stop()
            except BaseException as exc:  # stop the others first
                errors.append(exc)
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _url(self, name: ServerName) -> str:
        external = self.external.get(name)
        if external:
            return external
        with self._lock:
            if self._closed:
                raise DevStackError(f"the stack is closed; cannot start {name}")
            server = self._server(name)
        server.start()
        return server.url()

    def _server(self, name: ServerName) -> Server:
        with self._lock:
            server = self._servers.get(name)
            if server is None:
                home = self.workdir / name
                if name == "postgres":
                    server = Postgres(home)
                elif name == "redis":
                    server = Redis(home)
                elif name == "nats":
                    server = Nats(home)
                elif name == "kafka":
                    server = Kafka(home, self._kafka_jars)
                else:
                    raise DevStackError(f"unknown server {name!r}; one of {SERVER_NAMES}")
                self._servers[name] = server
            return server

    def _server_for_control(self, name: ServerName) -> Server:
        if name in self.external:
            raise DevStackError(f"{name} is external ({self.external[name]}); cannot control it")
        with self._lock:
            server = self._servers.get(name)
        if server is None:
            raise DevStackError(f"{name} was never started by this stack")
        return server
