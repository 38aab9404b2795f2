"""Operational routes: ``GET /health`` (liveness), ``GET /ready`` (each dependency checked),
``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp

from entrypoints import metrics, probes
from entrypoints.container import Container, resolve
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
    state = request.app.state
    readiness: Readiness | None = state.get("readiness")
    if readiness is None:
        readiness = state.readiness = Readiness(state.container, state.get("roles", ("serve",)))
    results = await readiness.results()
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


class Readiness:
    """The readiness checks of one app, reused for ``ready_cache_seconds``; concurrent calls
    share one round of checks. Each server is asked through the process's own client (the
    container's pool, Redis client, broker and log store), not a new connection."""

    def __init__(self, container: Container, roles: Sequence[probes.Role]) -> None:
        self._container = container
        self._settings = container.settings()
        self._deps = probes.needed(self._settings, roles)
        self._ttl = self._settings.ready_cache_seconds
        self._lock = asyncio.Lock()
        self._results: dict[str, str | None] = {}
        self._until = float("-inf")

    async def results(self) -> dict[str, str | None]:
        """Server name -> ``None`` when it answers, else the reason."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._until:
            return self._results
        async with self._lock:
            if loop.time() < self._until:  # another call checked while this one waited
                return self._results
            answers = await asyncio.gather(*(self._check(dep) for dep in self._deps))
            self._results = dict(zip((dep.name for dep in self._deps), answers, strict=True))
            self._until = loop.time() + self._ttl
            return self._results

    async def _check(self, dep: probes.Dependency) -> str | None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self._ping(dep.name)
        except Exception as exc:
            # Down, or the client is stuck: a fresh connection tells which, and why.
            try:
                await probes.check(dep, within=READY_TIMEOUT)
            except probes.UnreachableError as unreachable:
                return unreachable.reason
            if isinstance(exc, TimeoutError):
                return "timed out"
            return " ".join(str(exc).split())[:200] or type(exc).__name__
        return None

    async def _ping(self, name: str) -> None:
        container, settings = self._container, self._settings
        if name == "postgres":
            pool = await resolve(container.pg_pool())
            async with pool.connection(timeout=READY_TIMEOUT) as conn:
                await conn.execute("SELECT 1")
        elif name == "redis":
            await (await resolve(container.redis())).ping()
        elif name in ("nats", "kafka"):
            bus = container.events_bus if settings.events_broker == name else container.orders_bus
            await (await resolve(bus())).ping()
        elif name == "clickhouse":
            await (await resolve(container.log_store())).ping()


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
    roles = request.app.state.get("roles", ("serve",))
    await metrics.measure_readiness(request.app.state.container.settings(), roles)
    body, content_type = metrics.exposition()
    # raw headers: Litestar's Response would add a second ``charset`` to a ``text/`` type
    return BytesResponse(body, [(b"content-type", content_type.encode()), _NO_STORE_RAW])


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


ROUTES = [health, ready, prometheus_metrics]
DEPENDENCIES: dict[str, str] = {}
