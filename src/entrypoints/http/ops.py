"""Operational routes: ``GET /health`` (liveness), ``GET /ready`` (each dependency checked),
``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp

from core.ports.audit import OutboxRelayStore
from entrypoints import metrics, probes
from entrypoints.container import Container, resolve
from entrypoints.http.dependencies import Resolver
from entrypoints.http.errors import CODE_INTERNAL, ErrorOut, envelope
from entrypoints.http.fastpath import BytesResponse

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
_NO_STORE_RAW = (b"cache-control", b"no-store")
READY_TIMEOUT = 2.0
"""Seconds each readiness check may take."""


class ReadyOut(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/health", tags=["operations"], summary="Liveness: the process answers", sync_to_thread=False)
def health() -> Response[dict[str, str]]:
    return Response({"status": "ok"}, headers=_NO_STORE)


@get(
    "/ready",
    tags=["operations"],
    summary="Readiness: every server this process needs answers",
    description="200 with each check's result, or 503 in the error envelope whose `details` "
    "name each server that is down and why. Each server is asked through the client the "
    "process already holds; the result is reused for `HEXMARKET_READY_CACHE_SECONDS` (1 s).",
    responses={
        200: ResponseSpec(ReadyOut, description="Every server answers"),
        503: ResponseSpec(ErrorOut, description="A server is down (error envelope)"),
    },
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    results = await _readiness(request).results()
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
        ReadyOut(status="ready", checks=dict.fromkeys(results, "ok")),
        status_code=HTTP_200_OK,
        headers=_NO_STORE,
    )


def _readiness(request: Request[Any, Any, Any]) -> probes.Readiness:
    """The app's readiness checks, made on first use (``roles`` is set after the app is)."""
    state = request.app.state
    readiness: probes.Readiness | None = state.get("readiness")
    if readiness is None:
        readiness = state.readiness = probes.Readiness(
            state.container, state.get("roles", ("serve",)), within=READY_TIMEOUT
        )
    return readiness


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    description="The Prometheus text exposition format (gzip-compressed when asked).",
    responses={
        200: ResponseSpec(
            str,
            media_type="text/plain",
            description="Metrics in the Prometheus text format",
            generate_examples=False,
        )
    },
)
async def prometheus_metrics(request: Request[Any, Any, Any]) -> ASGIApp:
    await _measure_outbox_backlog(request.app.state.container)
    metrics.set_readiness(await _readiness(request).results())  # the checks of /ready
    body, content_type = metrics.exposition()
    # raw headers: Litestar's Response would add a second ``charset`` to a ``text/`` type
    return BytesResponse(body, [(b"content-type", content_type.encode()), _NO_STORE_RAW])


async def _measure_outbox_backlog(container: Container) -> None:
    """Set ``hexmarket_outbox_backlog`` from the outbox port (one short read, 1 s at most)."""
    try:
        async with asyncio.timeout(1.0):
            store: OutboxRelayStore = await resolve(container.outbox_relay_store())
            backlog = await store.backlog()
    except Exception as exc:  # a scrape never fails because the database is down
        log.debug("outbox backlog not measured: %s", exc)
        return
    metrics.OUTBOX_BACKLOG.set(backlog.pending)


ROUTES = [health, ready, prometheus_metrics]
DEPENDENCIES: dict[str, Resolver] = {}
