"""Integration tests run against real servers over real connections.

The fixtures are shared with the unit tests and live in ``tests/conftest.py``: ``stack`` (the
session's servers), ``pg_url`` (a fresh database per test), ``redis_url``, ``nats_url``,
``kafka_bootstrap``, ``clickhouse_url`` and ``unique``. The contract suites run here on the real
servers (``tests/contracts.py`` lists each suite's backends per tier). Helpers that are not
fixtures (``memory_settings``, ``app_client``, ``eventually``): ``tests/support.py``.
"""
