"""The outbox relay process: outbox (Postgres, or the in-memory catalog store) -> broker.
``run_relay`` runs until its stop event is set; run as ``python -m entrypoints.workers.relay``
it reads ``Settings`` from the environment and stops on SIGTERM/SIGINT. Several relays may run
at once: claims skip rows another relay holds."""

from __future__ import annotations

import asyncio
import logging

from core.audit.relay import OutboxRelay
from core.ports.audit import OutboxRelayStore
from entrypoints import metrics, runtime
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.audit.relay")

ROLE = "relay-outbox"


async def run_relay(container: Container, stop_event: asyncio.Event) -> None:
    settings: Settings = container.settings()
    relay: OutboxRelay = await resolve(container.outbox_relay())
    log.info(
        "relaying the outbox",
        extra={"broker": settings.events_broker, "topic": settings.events_topic},
    )
    store: OutboxRelayStore = await resolve(container.outbox_relay_store())

    async def measure_backlog() -> None:
        metrics.set_outbox_backlog(await store.backlog())

    async with metrics.sampling(settings.metrics_interval, measure_backlog, "outbox backlog"):
        await relay.run(stop_event)
    log.info(
        "outbox relay stopped",
        extra={"published": relay.stats.published, "failures": relay.stats.failures},
    )


#: ``hexmarket relay-outbox``, and ``python -m entrypoints.workers.relay``: the same process.
main = runtime.worker_command(
    ROLE,
    run_relay,
    "Publish audit events from the PostgreSQL outbox to the broker (HEXMARKET_EVENTS_BROKER).",
)

if __name__ == "__main__":
    main()
