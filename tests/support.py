"""Helpers shared by the tests (no fixtures: those are in ``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

from entrypoints.settings import Settings

#: Every adapter family on its in-memory adapter: the app with no server at all.
MEMORY: dict[str, Any] = {
    "catalog_store": "memory",
    "list_cache": "lru",
    "orders_store": "memory",
    "orders_cache": "lru",
    "orders_warm_count": 0,
    "orders_broker": "memory",
    "events_broker": "memory",
    "log_store": "memory",
}


def memory_settings(**overrides: Any) -> Settings:
    """``Settings`` of ``MEMORY`` and ``overrides``, ignoring the environment's ``.env``."""
    return Settings(_env_file=None, **{**MEMORY, **overrides})  # type: ignore[call-arg]
