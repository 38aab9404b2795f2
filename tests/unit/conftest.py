"""Unit-test fixtures: the app on its in-memory adapters, no server anywhere.

- ``app_settings``: ``memory_settings()`` (every adapter in memory). Override it in a test
  module for other values (``memory_settings(max_body_bytes=4096)``);
- ``container``: the ``Container`` (composition root) over ``app_settings``;
- ``client``: a Litestar ``AsyncTestClient`` on ``create_app(container)``, its lifespan run, closed
  after the test. A test that needs two apps, or other settings for one test, uses
  ``app_client(container)`` from ``tests/support.py`` directly.

Shared with the integration tests: ``tests/conftest.py`` (``unique``; the server fixtures are
never asked for here) and the contract suites' fixtures (``tests/contracts.py``). Helpers that
are not fixtures (``memory_settings``, ``app_client``, ``eventually``): ``tests/support.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.support import app_client, memory_settings


@pytest.fixture
def app_settings() -> Settings:
    """The app's settings: every adapter in memory. Override per module for other values."""
    return memory_settings()


@pytest.fixture
def container(app_settings: Settings) -> Container:
    """The composition root over ``app_settings``."""
    return Container(settings=app_settings)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app of ``container`` behind a started test client."""
    async with app_client(container) as test_client:
        yield test_client
