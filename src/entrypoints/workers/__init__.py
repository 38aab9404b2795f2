"""Long-running consumers, each an async ``run_*(container, stop_event)``."""
