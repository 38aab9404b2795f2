"""Every contract suite of ``core.contracts`` on the real servers (the session's, from
``tests/conftest.py``).

Which backends each suite runs on, here and in the other tier: ``tests/contracts.py``.
"""

from tests.contracts import (  # noqa: F401  (collected here, with this tier's backends)
    TestCache,
    TestCatalogStore,
    TestEventBus,
    TestLogStore,
    TestOrderRepository,
    TestOutboxRelayStore,
)
