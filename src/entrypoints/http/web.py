"""The web page at ``/``: plain HTML, CSS and JavaScript (no build step) that reads orders,
works the catalog and shows the audit log, all through the public HTTP API."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router

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
        cache_control=None,
    ),
]
DEPENDENCIES: dict[str, str] = {}
