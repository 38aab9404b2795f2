"""Import targets for granian (``--factory``): hexmarket's own app built from the environment,
as ``hexmarket serve`` builds it, and the raw ASGI ceiling of ``bench.bare_app``."""

from __future__ import annotations

from typing import Any

from bench.bare_app import create_raw_app

__all__ = ["create_raw_app", "hexmarket_app"]


def hexmarket_app() -> Any:
    """``create_app`` on a container of ``Settings()`` from the environment (granian runs the
    app's lifespan, which opens the clients and warms the caches as under ``hexmarket serve``)."""
    from entrypoints.container import Container
    from entrypoints.http.app import create_app
    from entrypoints.settings import Settings

    return create_app(Container(settings=Settings()))
