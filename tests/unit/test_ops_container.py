"""The composition root builds what the settings ask for."""

from __future__ import annotations

import pytest

from core.audit.relay import OutboxRelay
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings


@pytest.mark.parametrize("lanes", [1, 3])
async def test_relay_lanes_come_from_the_settings(lanes: int) -> None:
    settings = Settings(
        catalog_store="memory", events_broker="memory", relay_lanes=lanes, _env_file=None
    )
    container = Container(settings=settings)
    relay = await resolve(container.outbox_relay())
    assert isinstance(relay, OutboxRelay)
    assert relay.lanes == lanes


def test_relay_lanes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="relay_lanes"):
        Settings(relay_lanes=0, _env_file=None)
