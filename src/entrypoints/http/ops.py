"""Operational routes: ``GET /health`` (liveness), ``GET /ready`` (each dependency checked),
``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from entrypoints import metrics, probes
from entrypoints.http.errors import CODE_INTERNAL, envelope

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
    sync_to_thread=False,
    include_in_schema=True,
)
def prometheus_metrics() -> Response[bytes]:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type, headers=_NO_STORE)


ROUTES = [health, ready, prometheus_metrics]
DEPENDENCIES: dict[str, str] = {}
