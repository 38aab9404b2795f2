"""Every contract suite of ``core.contracts`` on the in-memory adapters (no server).

Which backends each suite runs on, here and in the other tier: ``tests/contracts.py``.
"""

from tests.contracts import (  # noqa: F401  (collected here, with this tier's backends)
    TestCatalogStore,
    TestEventBus,
    TestLogStore,
    TestOrderRepository,
    TestOutboxRelayStore,
    TestViewCache,
)
