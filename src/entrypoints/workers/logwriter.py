"""The log writer process: broker -> ClickHouse (one insert per batch) -> ack.
``run_log_writer`` runs until its stop event is set; run as
``python -m entrypoints.workers.logwriter`` it reads ``Settings`` from the environment and stops
on SIGTERM/SIGINT (the batch in hand is written and acknowledged first)."""

from __future__ import annotations

import asyncio
import logging

from core.audit.logwriter import LogWriter
from entrypoints import runtime
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.audit.logwriter")

ROLE = "write-logs"


async def run_log_writer(container: Container, stop_event: asyncio.Event) -> None:
    settings: Settings = container.settings()
    writer: LogWriter = await resolve(container.log_writer())
    log.info(
        "writing audit logs",
        extra={
            "broker": settings.events_broker,
            "store": settings.log_store,
            "topic": settings.events_topic,
            "group": settings.events_group,
        },
    )
    await writer.run(stop_event)
    log.info(
        "log writer stopped",
        extra={"written": writer.stats.written, "batches": writer.stats.batches},
    )


#: ``hexmarket write-logs``, and ``python -m entrypoints.workers.logwriter``: the same process.
main = runtime.worker_command(
    ROLE,
    run_log_writer,
    "Write audit events from the broker into the log store (ClickHouse) in batches.",
)

if __name__ == "__main__":
    main()
