"""The orders consumer process: broker -> validate -> Postgres (one transaction per batch) ->
dead letters -> commit/ack. ``run_orders_consumer`` runs until its stop event is set; run as
``python -m entrypoints.workers.orders_consumer`` it reads ``Settings`` from the environment and
stops gracefully on SIGTERM/SIGINT (the batch in hand is finished and acknowledged first).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from core.orders.ingest import IngestOrders, OrderConsumer
from core.ports.bus import EventBus
from entrypoints import metrics
from entrypoints.container import Container
from entrypoints.settings import Settings

log = logging.getLogger("hexmarket.orders.consumer")


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def run_orders_consumer(container: Container, stop: asyncio.Event) -> None:
    settings: Settings = container.settings()
    bus: EventBus = await _resolve(container.orders_bus())
    try:
        ingest: IngestOrders = await _resolve(container.orders_ingest())
        consumer = OrderConsumer(
            source=bus,
            topic=settings.orders_topic,
            group=settings.orders_group,
            ingest=ingest,
            batch_size=settings.ingest_batch_size,
            batch_timeout=settings.ingest_batch_ms / 1000,
            on_batch=metrics.record_order_batch,
        )
        log.info(
            "consuming orders",
            extra={
                "broker": settings.orders_broker,
                "topic": settings.orders_topic,
                "group": settings.orders_group,
            },
        )
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


async def _main() -> None:
    from entrypoints.runtime import stop_on_signals

    settings = Settings()
    container = Container(settings=settings)
    stop = asyncio.Event()
    try:
        with stop_on_signals(stop):
            await run_orders_consumer(container, stop)
    finally:
        result = container.shutdown_resources()
        if inspect.isawaitable(result):
            await result


def main() -> None:
    from entrypoints.logging import configure

    settings = Settings()
    configure(settings.log_level, json_lines=settings.log_json)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
