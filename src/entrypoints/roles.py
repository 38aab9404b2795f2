"""The worker roles, in the order ``hexmarket dev`` starts them: each role's name, its ``run_*``
function (``WORKERS``) and its command (``COMMANDS``, added to ``hexmarket`` by ``cli``)."""

from __future__ import annotations

from typing import Final

import click

from entrypoints.runtime import WorkerFn
from entrypoints.workers import logwriter, orders_consumer, relay

WORKERS: Final[dict[str, WorkerFn]] = {
    orders_consumer.ROLE: orders_consumer.run_orders_consumer,
    relay.ROLE: relay.run_relay,
    logwriter.ROLE: logwriter.run_log_writer,
}

COMMANDS: Final[tuple[click.Command, ...]] = (
    orders_consumer.main,
    relay.main,
    logwriter.main,
)
