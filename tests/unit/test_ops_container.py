"""The composition root builds what the settings ask for."""

from __future__ import annotations

import pytest

from core.audit.relay import OutboxRelay
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings
from tests.support import memory_settings


@pytest.mark.parametrize("lanes", [1, 3])
async def test_relay_lanes_come_from_the_settings(lanes: int) -> None:
    container = Container(settings=memory_settings(relay_lanes=lanes))
    relay = await resolve(container.outbox_relay())
    assert isinstance(relay, OutboxRelay)
    assert relay.lanes == lanes


def test_relay_lanes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="relay_lanes"):
        Settings(relay_lanes=0, _env_file=None)
