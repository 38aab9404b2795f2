"""Discovery: what a running ``hexmarket dev`` records in its work directory for the other
commands (``entrypoints.launch``), and how they read it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from entrypoints.devstack.process import port_open

#: Written by ``hexmarket dev`` into its work directory once it serves; removed when it stops.
STACK_FILE: Final = "stack.json"


def record_stack(workdir: Path, urls: Mapping[str, str], *, pid: int | None = None) -> Path:
    """Record the URLs a running stack serves (``Settings`` field name -> URL, plus
    ``http_url``) in ``workdir/stack.json``, with the recording process's id. Written
    atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(workdir) / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{STACK_FILE}.{os.getpid()}")
    staged.write_text(json.dumps({"pid": pid or os.getpid(), "urls": dict(urls)}, indent=2))
    staged.replace(path)
    return path


def forget_stack(workdir: Path, *, pid: int | None = None) -> None:
    """Remove the record if this process (or ``pid``) wrote it; another's is left alone."""
    path = Path(workdir) / STACK_FILE
    with contextlib.suppress(OSError, ValueError, TypeError):
        if json.loads(path.read_text())["pid"] == (pid or os.getpid()):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def running_stack(workdir: Path) -> dict[str, str] | None:
    """The URLs recorded by a ``hexmarket dev`` that still runs on ``workdir``; ``None`` when
    there is no record, it is unreadable, or its process is gone (a killed run's stale file)."""
    try:
        record = json.loads((Path(workdir) / STACK_FILE).read_text())
        pid, urls = record["pid"], record["urls"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(pid, int) or not isinstance(urls, dict) or not _alive(pid):
        return None
    http = urlsplit(str(urls.get("http_url", "")))
    if http.hostname and http.port and not port_open(http.hostname, http.port):
        return None  # the id now names another process: the recorded run is gone
    return {str(k): str(v) for k, v in urls.items() if isinstance(v, str) and v}
