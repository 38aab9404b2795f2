"""The orders consumer process: broker -> validate -> Postgres (one transaction per batch) ->
dead letters -> commit/ack. ``run_orders_consumer`` runs until its stop event is set; run as
``python -m entrypoints.workers.orders_consumer`` it reads ``Settings`` from the environment and
stops gracefully on SIGTERM/SIGINT (the batch in hand is finished and acknowledged first).
The consumer and its bus are the container's (``orders_consumer``, ``orders_bus``): built and
closed there.
"""

from __future__ import annotations

import asyncio
import logging

from core.orders.ingest import OrderConsumer
from core.ports.bus import EventBus
from entrypoints import metrics, runtime
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.orders.consumer")

ROLE = "consume-orders"


async def run_orders_consumer(container: Container, stop: asyncio.Event) -> None:
    settings: Settings = container.settings()
    bus: EventBus = await resolve(container.orders_bus())
    consumer: OrderConsumer = await resolve(container.orders_consumer())

    async def measure_lag() -> None:
        lag = await bus.lag(settings.orders_topic, settings.orders_group)
        metrics.set_consumer_lag(settings.orders_topic, settings.orders_group, lag)

    log.info(
        "consuming orders",
        extra={
            "broker": settings.orders_broker,
            "topic": settings.orders_topic,
            "group": settings.orders_group,
        },
    )
    async with metrics.sampling(settings.metrics_interval, measure_lag, "consumer lag"):
        stats = await consumer.run(stop)
    log.info(
        "orders consumer stopped",
        extra={
            "batches": stats.batches,
            "inserted": stats.inserted,
            "duplicates": stats.duplicates,
            "dead_lettered": stats.dead_lettered,
        },
    )


#: ``hexmarket consume-orders``, and ``python -m entrypoints.workers.orders_consumer``: the same
#: process.
main = runtime.worker_command(
    ROLE,
    run_orders_consumer,
    "Ingest orders from the broker (HEXMARKET_ORDERS_BROKER) into PostgreSQL; invalid ones go "
    "to the dead-letter topic.",
)

if __name__ == "__main__":
    main()
