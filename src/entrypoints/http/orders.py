"""``GET /order/{order_uid}``: the stored order document, from the cache when it can be.

Orders are immutable, so a found order is cacheable forever by the browser; ``private``: it
holds a customer's personal data, which shared proxies must not store (strong ``ETag``: the
document's digest, computed once when it is cached; ``304`` on a matching ``If-None-Match``);
a 404 is ``no-store`` because the order may arrive a moment later.

A cache hit is the hot path: the handler sends the cached bytes as they are, with prepared
headers (``entrypoints.http.fastpath``), and counts the hit in plain integers
(``OrderQueries.stats``, fed to Prometheus at scrape time).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.types import ASGIApp

from core.errors import InfrastructureError
from core.orders.queries import OrderQueries
from entrypoints.http import dependencies
from entrypoints.http.errors import UNAVAILABLE, error
from entrypoints.http.fastpath import (
    BytesResponse,
    etag_matches,
    etag_of,
    json_response,
    request_header,
)
from entrypoints.http.front import CACHE_CHECKED
from entrypoints.settings import Settings

log = logging.getLogger(__name__)

IMMUTABLE = "private, max-age=31536000, immutable"
_IMMUTABLE = (b"cache-control", IMMUTABLE.encode())
ORDER_HEADERS = (_IMMUTABLE,)
"""The headers of a found order besides ``ETag`` and ``X-Cache`` (the hot front sends them too)."""
_HIT = (b"x-cache", b"hit")
_MISS = (b"x-cache", b"miss")


@get(
    "/order/{order_uid:str}",
    summary="An order by its order_uid",
    description=(
        "The order document in the message shape. `order_uid` is 1..64 characters of "
        "`[A-Za-z0-9_-]`. Header `X-Cache: hit|miss` says whether the cache served it."
    ),
    tags=["orders"],
    responses={
        200: ResponseSpec(
            dict[str, Any],
            generate_examples=False,
            description=(
                "The order document (the message shape). Headers: `X-Cache: hit|miss`, a "
                "strong `ETag`, `Cache-Control: private, max-age=31536000, immutable`."
            ),
        ),
        304: ResponseSpec(None, description="Not modified (If-None-Match matched)"),
        400: error("Malformed order_uid"),
        404: error("No such order (`Cache-Control: no-store`)"),
        **UNAVAILABLE,
    },
)
async def get_order(
    order_uid: FromPath[str],
    orders: NamedDependency[OrderQueries],
    request: Request[Any, Any, Any],
) -> ASGIApp:
    document = await orders.get(order_uid, cache_checked=CACHE_CHECKED in request.scope["state"])
    etag = etag_of(document.digest).encode()
    headers = [_HIT if document.cache_hit else _MISS, (b"etag", etag), _IMMUTABLE]
    if_none_match = request_header(request.scope, b"if-none-match")
    if if_none_match and etag_matches(if_none_match, etag):
        return BytesResponse(b"", headers, status=304)
    return json_response(document.body, *headers)


async def warm_order_cache(services: dict[str, Any]) -> None:
    """Load the newest orders into the cache before serving; a database that is down only
    costs the warm-up (logged), never the start."""
    orders: OrderQueries = services["orders"]
    settings: Settings = services["settings"]
    try:
        await orders.warm(settings.orders_warm_count)
    except InfrastructureError as exc:
        log.warning("order cache warm-up skipped: %s", exc)


ROUTES = [get_order]
DEPENDENCIES: dict[str, dependencies.Resolver] = {
    "orders": dependencies.order_queries,
    "settings": dependencies.settings,
}
STARTUP = [warm_order_cache]
