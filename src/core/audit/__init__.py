"""The audit trail's use cases: the outbox relay and the log writer (pure loops over ports)."""
