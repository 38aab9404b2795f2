"""``GET /order/{order_uid}``: the stored order document, from the cache when it can be.

Orders are immutable, so a found order is cacheable forever by browsers and proxies (strong
``ETag`` over the exact bytes, ``304`` on a matching ``If-None-Match``); a 404 is ``no-store``
because the order may arrive a moment later.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from core.errors import InfrastructureError
from core.orders.queries import OrderQueries
from entrypoints import metrics
from entrypoints.settings import Settings

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal under weak comparison."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@get(
    "/order/{order_uid:str}",
    summary="An order by its order_uid",
    description=(
        "The order document in the message shape. `order_uid` is 1..64 characters of "
        "`[A-Za-z0-9_-]`. Header `X-Cache: hit|miss` says whether the cache served it."
    ),
    tags=["orders"],
    responses={
        304: ResponseSpec(None, description="Not modified (If-None-Match matched)"),
        400: ResponseSpec(None, description="Malformed order_uid (error envelope)"),
        404: ResponseSpec(None, description="No such order (error envelope, no-store)"),
    },
)
async def get_order(
    order_uid: FromPath[str],
    orders: NamedDependency[OrderQueries],
    request: Request[Any, Any, Any],
) -> Response[bytes]:
    document = await orders.get(order_uid)
    metrics.cache_outcome("orders", hit=document.cache_hit)
    etag = etag_of(document.body)
    headers = {
        "X-Cache": "hit" if document.cache_hit else "miss",
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _matches(if_none_match, etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


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
DEPENDENCIES = {"orders": "order_queries", "settings": "settings"}
STARTUP = [warm_order_cache]
