"""The web page at ``/``: plain HTML, CSS and JavaScript (no build step) that reads orders,
works the catalog and shows the audit log, all through the public HTTP API."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router

from entrypoints.http.dependencies import Resolver

STATIC = Path(__file__).parent / "static"

_index: bytes | None = None


@get("/", include_in_schema=False, sync_to_thread=False)
def index() -> Response[bytes]:
    global _index  # read once, on first request: no I/O at import time
    if _index is None:
        _index = (STATIC / "index.html").read_bytes()
    return Response(_index, media_type=MediaType.HTML, headers={"Cache-Control": "no-cache"})


ROUTES = [
    index,
    create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        # no build step means no hashed file names: browsers revalidate (ETag) on every load,
        # so a new release's script never meets an old page.
        cache_control=CacheControlHeader(no_cache=True),
    ),
]
DEPENDENCIES: dict[str, Resolver] = {}
