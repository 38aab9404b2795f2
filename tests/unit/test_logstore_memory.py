"""The in-memory log store refuses every call while unavailable (the log store contract runs
on it too, the reference model checked on itself: ``tests/contracts.py``)."""

from __future__ import annotations

import pytest

from adapters.memory.logstore import MemoryLogStore
from core.contracts.logstore import event
from core.errors import LogStoreError


async def test_an_unavailable_store_refuses_every_call() -> None:
    store = MemoryLogStore()
    store.available = False
    with pytest.raises(LogStoreError):
        await store.append([event()])
    with pytest.raises(LogStoreError):
        await store.query()
    store.available = True
    assert await store.query() == []
