"""Operational routes: ``GET /health`` (liveness), ``GET /ready`` (each dependency checked),
``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from core.catalog.service import CatalogService
from entrypoints import metrics, probes
from entrypoints.container import Container
from entrypoints.http.errors import CODE_INTERNAL, envelope

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}


@get("/health", tags=["operations"], summary="Liveness: the process answers", sync_to_thread=False)
def health() -> Response[dict[str, str]]:
    return Response({"status": "ok"}, headers=_NO_STORE)


@get(
    "/ready",
    tags=["operations"],
    summary="Readiness: every server this process needs answers",
    description="200 with each check's result, or 503 in the error envelope whose `details` "
    "name each server that is down and why.",
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    settings = request.app.state.container.settings()
    roles = request.app.state.get("roles", ("serve",))
    deps = probes.needed(settings, roles)
    results = await probes.check_all(deps)
    metrics.set_readiness(results)
    down = {name: reason for name, reason in results.items() if reason is not None}
    if down:
        labelled = {
            name: f"cannot reach {probes.LABELS[name]}: {reason}" for name, reason in down.items()
        }
        return envelope(
            HTTP_503_SERVICE_UNAVAILABLE, CODE_INTERNAL, "errors.common.unavailable", labelled
        )
    return Response(
        {"status": "ready", "checks": dict.fromkeys(results, "ok")},
        status_code=HTTP_200_OK,
        headers=_NO_STORE,
    )


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
)
async def prometheus_metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    await _measure_outbox_backlog(request.app.state.container)
    roles = request.app.state.get("roles", ("serve",))
    await metrics.measure_readiness(request.app.state.container.settings(), roles)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type, headers=_NO_STORE)


async def _measure_outbox_backlog(container: Container) -> None:
    """Set ``hexmarket_outbox_backlog`` from the outbox (one indexed count, 1 s at most)."""
    if container.settings().catalog_store != "postgres":
        return
    try:
        pool = container.pg_pool()
        if inspect.isawaitable(pool):
            pool = await pool
        async with asyncio.timeout(1.0), pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            row = await cur.fetchone()
    except Exception as exc:  # a scrape never fails because the database is down
        log.debug("outbox backlog not measured: %s", exc)
        return
    if row is not None:
        metrics.OUTBOX_BACKLOG.set(int(row[0]))


async def _watch_use_cases(services: dict[str, Any]) -> None:
    """Feed the list cache counters from the catalog service other route modules resolved
    (resolving it here would make a catalog-less app need its servers)."""
    for service in services.values():
        if isinstance(service, CatalogService):
            metrics.watch_catalog(service)
            return


ROUTES = [health, ready, prometheus_metrics]
DEPENDENCIES: dict[str, str] = {}
STARTUP = [_watch_use_cases]
