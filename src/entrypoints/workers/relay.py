"""The outbox relay process: outbox (Postgres, or the in-memory catalog store) -> broker.
``run_relay`` runs until its stop event is set; run as ``python -m entrypoints.workers.relay``
it reads ``Settings`` from the environment and stops on SIGTERM/SIGINT. Several relays may run
at once: claims skip rows another relay holds."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from core.audit.relay import OutboxRelay
from entrypoints.container import Container
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.audit.relay")


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def run_relay(container: Container, stop_event: asyncio.Event) -> None:
    settings: Settings = container.settings()
    relay: OutboxRelay = await _resolve(container.outbox_relay())
    log.info(
        "relaying the outbox",
        extra={"broker": settings.events_broker, "topic": settings.events_topic},
    )
    await relay.run(stop_event)
    log.info(
        "outbox relay stopped",
        extra={"published": relay.stats.published, "failures": relay.stats.failures},
    )


async def _main() -> None:
    from entrypoints.runtime import close_container, stop_on_signals

    container = Container(settings=Settings())
    stop = asyncio.Event()
    try:
        with stop_on_signals(stop):
            await run_relay(container, stop)
    finally:
        await close_container(container)


def main() -> None:
    from entrypoints.logging import configure

    settings = Settings()
    configure(settings.log_level, json_lines=settings.log_json)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
