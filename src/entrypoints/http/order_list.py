"""``GET /orders``: the newest orders as summaries, keyset-paged, for the web page's Orders tab.

One bounded read of the repository per request (at most ``MAX_RECENT`` rows through the
``(date_created DESC, order_uid)`` index), never cached: the list changes with every ingest.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from core.orders.model import ORDER_UID_PATTERN
from core.orders.queries import OrderQueries
from core.ports.orders import MAX_RECENT
from entrypoints.http.dependencies import Resolver, order_queries
from entrypoints.http.errors import BAD_REQUEST, UNAVAILABLE

DEFAULT_LIMIT = 20


class OrderSummaryOut(msgspec.Struct):
    """``core.ports.orders.OrderSummary`` on the wire (its fields, in its order)."""

    order_uid: str
    date_created: str
    track_number: str
    customer_id: str
    name: str
    city: str
    amount: int
    currency: str
    items: int


class OrdersMeta(msgspec.Struct):
    limit: int
    count: int
    next: str | None
    """Pass as ``before`` for the next page; ``null`` on the last page."""


class OrdersOut(msgspec.Struct):
    meta: OrdersMeta
    orders: list[OrderSummaryOut]


@get(
    "/orders",
    summary="The newest orders, keyset-paged",
    description=(
        "Summaries, newest `date_created` first (ties by `order_uid`). `limit` 1..100 "
        "(default 20); `before`: the `meta.next` of the previous page."
    ),
    tags=["orders"],
    responses={
        200: ResponseSpec(OrdersOut, description="One page of summaries"),
        **BAD_REQUEST,
        **UNAVAILABLE,
    },
)
async def list_orders(
    orders: NamedDependency[OrderQueries],
    limit: Annotated[
        int, QueryParameter(ge=1, le=MAX_RECENT, description="Most orders returned.")
    ] = DEFAULT_LIMIT,
    before: Annotated[
        str | None,
        QueryParameter(
            description="Start after this order_uid (the previous page's meta.next).",
            pattern=ORDER_UID_PATTERN,
        ),
    ] = None,
) -> Response[OrdersOut]:
    found = await orders.recent(limit, before)
    body = OrdersOut(
        meta=OrdersMeta(
            limit=limit,
            count=len(found),
            next=found[-1].order_uid if len(found) == limit else None,
        ),
        orders=msgspec.convert(found, list[OrderSummaryOut], from_attributes=True),
    )
    return Response(body, headers={"Cache-Control": "no-store"})


ROUTES = [list_orders]
DEPENDENCIES: dict[str, Resolver] = {"orders": order_queries}
