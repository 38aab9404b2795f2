"""Integration tests run against real servers: the fixtures live in ``tests/conftest.py``."""
