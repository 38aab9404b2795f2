"""The HTTP ceilings: the same bytes and headers hexmarket answered, served from a dict.

Both run under the same ASGI server with the same settings as ``hexmarket serve``
(``bench.hexmarket.ASGI_ARGS``), so the difference is hexmarket's own per-request work.
``BENCH_BARE_DATA`` names a JSON file ``{"responses": {path_and_query: [body, headers]}}``,
filled with hexmarket's own responses (headers as ``[[name, value], ...]``, without the
server's own ``date``/``server``/``content-length``).

- ``create_raw_app``: **the ceiling**: a bare ASGI callable, no framework and no routing (one
  dictionary lookup on the raw path and query, two sends): what the server itself can do.
- ``create_app``: bare Litestar handlers doing the same (informative: what the framework's
  routing, parameter parsing and response machinery cost before any work of ours).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

_MISSING = b'{"code":3,"message":"errors.common.notFound","details":{}}'
_HEALTH = b'{"status":"ok"}'
_JSON = (b"content-type", b"application/json")
_NOT_FOUND = (_MISSING, [_JSON, (b"content-length", b"%d" % len(_MISSING))])

Prepared = tuple[bytes, list[tuple[bytes, bytes]]]


def _load() -> dict[str, Prepared]:
    data = json.loads(Path(os.environ["BENCH_BARE_DATA"]).read_text())
    out: dict[str, Prepared] = {"/health": (_HEALTH, [_JSON])}
    for target, (body, headers) in data["responses"].items():
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        out[target] = (body.encode(), raw)
    return {
        target: (body, [*headers, (b"content-length", b"%d" % len(body))])
        for target, (body, headers) in out.items()
    }


class _Prepared:
    """The prepared bytes as an ASGI response (Litestar hands it to the server as is)."""

    __slots__ = ("_body", "_headers", "_status")

    def __init__(self, prepared: Prepared | None) -> None:
        self._status = 200 if prepared else 404
        self._body, self._headers = prepared or _NOT_FOUND

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self._headers}
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})


def create_raw_app() -> ASGIApp:
    responses = _load()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:  # lifespan: nothing to start
            return
        query = scope["query_string"]
        target = scope["path"] + "?" + query.decode("latin-1") if query else scope["path"]
        body, headers = responses.get(target, _NOT_FOUND)
        status = 200 if body is not _MISSING else 404
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


def create_app() -> Litestar:
    responses = _load()

    def lookup(request: Request[Any, Any, Any]) -> _Prepared:
        query = request.scope["query_string"].decode("latin-1")
        path = request.scope["path"]
        return _Prepared(responses.get(f"{path}?{query}" if query else path))

    @get("/health")
    async def health(request: Request[Any, Any, Any]) -> ASGIApp:
        return lookup(request)

    @get("/order/{uid:str}")
    async def order(request: Request[Any, Any, Any], uid: str) -> ASGIApp:
        return lookup(request)

    @get("/goods/list")
    async def goods_list(
        request: Request[Any, Any, Any], limit: int = 10, offset: int = 1
    ) -> ASGIApp:
        return lookup(request)

    return Litestar(route_handlers=[health, order, goods_list], openapi_config=None)
