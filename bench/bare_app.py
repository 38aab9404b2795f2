"""The HTTP ceiling: bare Litestar handlers returning prepared bytes from a dict.

Served by the same ASGI server with the same settings as ``hexmarket serve``; the bytes are the
ones hexmarket returned for the same requests, so the difference is hexmarket's own work.
``BENCH_BARE_DATA`` names a JSON file ``{"orders": {uid: body}, "goods": {"limit,offset": body}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from litestar import Litestar, MediaType, Response, get


def create_app() -> Litestar:
    data = json.loads(Path(os.environ["BENCH_BARE_DATA"]).read_text())
    orders: dict[str, bytes] = {k: v.encode() for k, v in data.get("orders", {}).items()}
    goods: dict[str, bytes] = {k: v.encode() for k, v in data.get("goods", {}).items()}
    missing = b'{"code":3,"message":"errors.common.notFound","details":{}}'

    @get("/health", media_type=MediaType.JSON)
    async def health() -> Response[bytes]:
        return Response(b'{"status":"ok"}', media_type=MediaType.JSON)

    @get("/order/{uid:str}")
    async def order(uid: str) -> Response[bytes]:
        body = orders.get(uid)
        if body is None:
            return Response(missing, status_code=404, media_type=MediaType.JSON)
        return Response(body, media_type=MediaType.JSON)

    @get("/goods/list")
    async def goods_list(limit: int = 10, offset: int = 1) -> Response[bytes]:
        body = goods.get(f"{limit},{offset}")
        if body is None:
            return Response(missing, status_code=404, media_type=MediaType.JSON)
        return Response(body, media_type=MediaType.JSON)

    return Litestar(route_handlers=[health, order, goods_list], openapi_config=None)
