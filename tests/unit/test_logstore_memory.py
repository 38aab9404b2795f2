"""The log store contract on the in-memory adapter (the reference model checked on itself)."""

from __future__ import annotations

import pytest

from adapters.memory.logstore import MemoryLogStore
from core.contracts.logstore import LogStoreContract, event
from core.errors import LogStoreError


@pytest.fixture
def log_store() -> MemoryLogStore:
    return MemoryLogStore()


@pytest.fixture
def reference() -> MemoryLogStore:
    return MemoryLogStore()


class TestMemoryLogStore(LogStoreContract):
    pass


async def test_an_unavailable_store_refuses_every_call() -> None:
    store = MemoryLogStore()
    store.available = False
    with pytest.raises(LogStoreError):
        await store.append([event()])
    with pytest.raises(LogStoreError):
        await store.query()
    store.available = True
    assert await store.query() == []
