"""The log writer process: broker -> ClickHouse (one insert per batch) -> ack.
``run_log_writer`` runs until its stop event is set; run as
``python -m entrypoints.workers.logwriter`` it reads ``Settings`` from the environment and stops
on SIGTERM/SIGINT (the batch in hand is written and acknowledged first)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from core.audit.logwriter import LogWriter
from entrypoints.container import Container
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.audit.logwriter")


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def run_log_writer(container: Container, stop_event: asyncio.Event) -> None:
    settings: Settings = container.settings()
    writer: LogWriter = await _resolve(container.log_writer())
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


async def _main() -> None:
    from entrypoints.runtime import close_container, stop_on_signals

    container = Container(settings=Settings())
    stop = asyncio.Event()
    try:
        with stop_on_signals(stop):
            await run_log_writer(container, stop)
    finally:
        await close_container(container)


def main() -> None:
    from entrypoints.logging import configure

    settings = Settings()
    configure(settings.log_level, json_lines=settings.log_json)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
