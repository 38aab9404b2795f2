"""``clickhouse``: nothing is started. The URL is a ``chdb:///abs/path`` DSN for
clickhouse-connect's in-process engine. chDB allows one engine path per process, so every
client in a process must use this one DSN (tests separate themselves by database name)."""

from __future__ import annotations

from pathlib import Path


def chdb_url(workdir: Path) -> str:
    """``chdb:///<workdir>/clickhouse``, the directory created."""
    path = workdir / "clickhouse"
    path.mkdir(parents=True, exist_ok=True)
    return f"chdb://{path}"
