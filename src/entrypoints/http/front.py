"""The hot routes' front: ``GET /order/{uid}`` cache hits and ``GET /goods/list`` pages answered
ahead of Litestar's router, everything else handed to Litestar unchanged.

A cache hit was measured at a few times the server's own cost per request when it went through
Litestar's routing, parameter parsing, dependency resolution and middleware stack: the front
makes it what it must be, a dictionary lookup, a header comparison and two ASGI sends. It only
answers requests whose every part it understands:

- ``GET /order/<uid>`` with no query string, a well-formed uid and the document in the cache;
- ``GET /goods/list`` (or ``/items/list``) whose query is empty or ``limit`` / ``offset`` given
  once each as plain decimal digits within their ranges (any page, cached or not: the service
  reads the cache and, on a miss, the store, exactly as the Litestar handler does).

Anything else (a miss of an order, a malformed or unknown id, another method, a query it would
have to interpret, an error raised on the way) goes to the Litestar application as if the front
were not there, so errors keep the one envelope and table (``entrypoints.http.errors``), and the
routes keep their OpenAPI description, guards and parameters. Both paths send the same headers
(``HotRoutes.extra_headers`` carries the application's own) and are counted in the same request
latency histogram under the same route template.

A cached order's complete response headers are made once per cached document
(``HotRoutes.order_response``, kept with the entry by the in-process cache: ``ViewCache``), so
its hit builds nothing but the two ASGI messages. The headers are shared by every response of
that order: a ``send`` wrapper that changes them copies them first (``_headless`` and
``_with_headers`` do).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import cast

import attrs
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)

from core.catalog.rules import LIMIT_MAX
from core.catalog.service import CatalogService
from core.orders.queries import OrderDocument, OrderQueries
from entrypoints import metrics
from entrypoints.http.edge import hostname
from entrypoints.http.fastpath import etag_matches, etag_of, request_header

ORDER_ROUTE = "/order/{order_uid}"  # as Litestar names the route in ``path_template``
CACHE_CHECKED = "hexmarket.order_cache_checked"
"""Set in the request's ASGI ``state`` when the front looked the order up and missed."""
LIST_ROUTES = {"/goods/list": "/goods/list", "/items/list": "/items/list"}
_ORDER_PREFIX = "/order/"
_JSON = (b"content-type", b"application/json")
_HIT = (b"x-cache", b"hit")
_MAX_DIGITS = 7  # offsets past 9,999,999 (or odd spellings) are Litestar's to answer
Headers = tuple[tuple[bytes, bytes], ...]


def route_of(path: str) -> str | None:
    """The route template of a request the front may answer without Litestar (which names
    the others in ``path_template``), for the request's span and metrics."""
    if path.startswith(_ORDER_PREFIX):
        return ORDER_ROUTE
    return LIST_ROUTES.get(path)


@attrs.frozen(kw_only=True)
class HotRoutes:
    """What the front serves from: the use cases, and the headers every response carries."""

    orders: OrderQueries | None = None
    catalog: CatalogService | None = None
    order_headers: tuple[tuple[bytes, bytes], ...] = ()
    """Headers of an order response besides ``ETag`` and ``X-Cache`` (``Cache-Control``)."""
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    """Headers the application adds to every response."""
    order_response: Callable[[OrderDocument], Headers] = attrs.field(init=False)
    """The complete headers of a cached order's 200 response, made once per cached document
    (``OrderQueries.cached_view``: the in-process cache keeps them with the entry): ``X-Cache:
    hit``, ``ETag`` (always second), ``order_headers``, ``extra_headers``, then
    ``Content-Type`` and ``Content-Length`` (always last two: a 304 sends all but those)."""

    @order_response.default
    def _order_response(self) -> Callable[[OrderDocument], Headers]:
        tail = (*self.order_headers, *self.extra_headers)

        def headers_of(document: OrderDocument) -> Headers:
            etag = (b"etag", etag_of(document.digest).encode())
            return (_HIT, etag, *tail, _JSON, _content_length(len(document.body)))

        return headers_of


@functools.lru_cache(maxsize=4096)
def _content_length(size: int) -> tuple[bytes, bytes]:
    """The ``Content-Length`` header of a body of ``size`` bytes (one pair per size, shared)."""
    return (b"content-length", b"%d" % size)


@functools.lru_cache(maxsize=256)  # the few hosts clients name; others are computed again
def _served(allowed: frozenset[bytes], host: bytes) -> bool:
    return hostname(host) in allowed


@functools.lru_cache(maxsize=1024)  # the pages clients ask for; others are read again
def _page(query: bytes) -> tuple[int, int] | None:
    """``(limit, offset)`` of a canonical list query, else ``None`` (Litestar decides)."""
    limit, offset = 10, 1
    seen: set[bytes] = set()
    if query:
        for part in query.split(b"&"):
            name, eq, value = part.partition(b"=")
            if (
                not eq
                or name in seen
                or name not in (b"limit", b"offset")
                or not value.isdigit()  # bytes.isdigit: ASCII 0-9 only
                or len(value) > _MAX_DIGITS
            ):
                return None
            seen.add(name)
            if name == b"limit":
                limit = int(value)
            else:
                offset = int(value)
    if not 1 <= limit <= LIMIT_MAX:
        return None
    return limit, max(offset, 1)


class FrontedLitestar(Litestar):
    """The Litestar application with the hot routes' front (``hot``, set at start-up once the
    services exist; until then every request goes to Litestar).

    Ahead of both, for every HTTP request: the ``Host`` check (``served_hosts``, ``None``:
    any), ``HEAD`` answered as ``GET`` without the body, and ``edge_headers`` (the security
    headers, ``entrypoints.http.edge``) added to every response Litestar sends; the front's own
    answers carry them through ``HotRoutes.extra_headers``."""

    hot: HotRoutes | None = None
    served_hosts: frozenset[bytes] | None = None
    edge_headers: tuple[tuple[bytes, bytes], ...] = ()

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        http = cast("HTTPScope", scope)
        respond = cast("Send", send)
        allowed = self.served_hosts
        if allowed is not None:
            host = request_header(http, b"host")
            if host is None or not _served(allowed, host):
                await _refuse(respond, 400, _BAD_HOST, self.edge_headers)
                return
        method = http["method"]
        if method == "HEAD":  # as GET, without the body (RFC 9110 9.3.2)
            http = cast("HTTPScope", {**http, "method": "GET"})
            respond = _headless(respond)
            method = "GET"
        hot = self.hot
        if hot is not None and method == "GET" and await _serve(hot, http, respond):
            return
        if "\x00" in http["path"]:  # no file, no route has one (and os.stat would raise)
            await _refuse(respond, 404, _NOT_FOUND, self.edge_headers)
            return
        await super().__call__(http, receive, _with_headers(respond, self.edge_headers))


_BAD_HOST = b'{"code":2,"message":"errors.common.validation","details":{"host":"not served here"}}'
_NOT_FOUND = b'{"code":3,"message":"errors.common.notFound","details":{}}'
_NO_STORE = (b"cache-control", b"no-store")


async def _refuse(
    send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...]
) -> None:
    """An error envelope (``entrypoints.http.errors``) sent ahead of Litestar."""
    headers = [_JSON, _NO_STORE, (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _headless(send: Send) -> Send:
    """``send`` for a HEAD request: the GET response's status and headers, no body bytes."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return sending


def _with_headers(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    """``send`` adding ``extra`` to the response's headers."""
    if not extra:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return sending


async def _serve(hot: HotRoutes, scope: HTTPScope, send: Send) -> bool:
    """Answer the request if it is one of the front's; ``False`` when nothing was sent."""
    started = time.perf_counter()
    path = scope["path"]
    if path.startswith(_ORDER_PREFIX):
        if hot.orders is None or scope["query_string"]:
            return False
        status = await _order(hot, hot.orders, path[len(_ORDER_PREFIX) :], scope, send)
        if status:
            metrics.observe_request("GET", ORDER_ROUTE, status, started)
        return bool(status)
    if path in LIST_ROUTES and hot.catalog is not None:
        page = _page(scope["query_string"])
        if page is not None and await _list(hot, hot.catalog, page, send):
            metrics.observe_request("GET", LIST_ROUTES[path], 200, started)
            return True
    return False


async def _order(
    hot: HotRoutes, orders: OrderQueries, uid: str, scope: HTTPScope, send: Send
) -> int:
    """Answer a cached order (200, or 304 on a matching ``If-None-Match``) with its prepared
    headers; 0 if not cached."""
    found = await orders.cached_view(uid, hot.order_response)
    if found is None:
        scope.setdefault("state", {})[CACHE_CHECKED] = True  # the handler skips the cache
        return 0
    body, headers = found
    if_none_match = request_header(scope, b"if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, headers[1][1]):
        await send({"type": "http.response.start", "status": 304, "headers": headers[:-2]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return 304
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return 200


async def _list(hot: HotRoutes, catalog: CatalogService, page: tuple[int, int], send: Send) -> bool:
    """Answer a page of goods; ``False`` (nothing sent) if reading it failed: Litestar then
    answers the request with the error table."""
    try:
        body = await catalog.list_goods(limit=page[0], offset=page[1])
    except Exception:  # Litestar repeats the call and renders the error
        return False
    headers = (_JSON, _content_length(len(body)), *hot.extra_headers)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return True
