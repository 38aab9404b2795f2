"""The orders consumer process: broker -> validate -> Postgres (one transaction per batch) ->
dead letters -> commit/ack. ``run_orders_consumer`` runs until its stop event is set; run as
``python -m entrypoints.workers.orders_consumer`` it reads ``Settings`` from the environment and
stops gracefully on SIGTERM/SIGINT (the batch in hand is finished and acknowledged first).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from core.orders.ingest import IngestOrders, OrderConsumer
from core.ports.bus import EventBus
from entrypoints import metrics
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.orders.consumer")


async def run_orders_consumer(container: Container, stop: asyncio.Event) -> None:
    settings: Settings = container.settings()
    bus: EventBus = await resolve(container.orders_bus())
    try:
        ingest: IngestOrders = await resolve(container.orders_ingest())
        consumer = OrderConsumer(
            source=bus,
            topic=settings.orders_topic,
            group=settings.orders_group,
            ingest=ingest,
            batch_size=settings.ingest_batch_size,
            batch_timeout=settings.ingest_batch_ms / 1000,
            on_batch=metrics.record_order_batch,
            on_retry=metrics.retry_hook("consume-orders"),
        )

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
    finally:
        await bus.close()


def main() -> None:
    """``python -m`` runs the same process as ``hexmarket consume-orders``."""
    from entrypoints.cli import main as cli

    cli(["consume-orders", *sys.argv[1:]])


if __name__ == "__main__":
    main()
