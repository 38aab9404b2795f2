"""The supervisor's process side: errors, free ports, spawning children that die with the
parent, and ``Server``, one supervised server process with a fixed port and data directory
(each server's module subclasses it)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

_LOG_TAIL_LINES: Final = 40
POLL_INTERVAL: Final = 0.05


class DevStackError(RuntimeError):
    """A server could not be started, reached or controlled."""


class ServerStartError(DevStackError):
    """A server did not become ready; the message carries the reason and the tail of its log."""

    def __init__(self, name: str, reason: str, log_path: Path | None) -> None:
        self.name = name
        self.reason = reason
        self.log_path = log_path
        self.log_tail = _tail(log_path) if log_path is not None else ""
        where = f" (log: {log_path})" if log_path is not None else ""
        message = f"{name} failed to start: {reason}{where}"
        if self.log_tail:
            message += f"\n--- last lines of the {name} log ---\n{self.log_tail}"
        super().__init__(message)


class ServerUnavailableError(ServerStartError):
    """A server cannot be started here at all: its program or toolchain is missing."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- spawning ----------------------------------------------------------------------------------

_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    prctl: Callable[..., int] | None = None
    if sys.platform.startswith("linux"):
        # Resolved here: the child of a threaded parent should not load libraries.
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:  # runs in the child, after setuid (which clears the death signal)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _Spawner:
    """Forks children from one daemon thread that lives as long as the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], queue.SimpleQueue[Any]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def popen(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="devstack-spawner", daemon=True
                )
                self._thread.start()
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._requests.put((make, reply))
        result = reply.get()
        if isinstance(result, BaseException):
            raise result
        proc: subprocess.Popen[bytes] = result
        return proc

    def _serve(self) -> None:
        while True:
            make, reply = self._requests.get()
            try:
                reply.put(make())
            except BaseException as exc:  # handed back to the caller
                reply.put(exc)


_SPAWNER: Final = _Spawner()


# --- servers ---------------------------------------------------------------------------------


class Server(ABC):
    """One supervised server process with a fixed port and data directory."""

    name: str
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = self._port("port")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"
        self.started_seconds: float | None = None
        self.lock = threading.RLock()

    def _port(self, key: str) -> int:
        """The port this work directory used last time if it is free, else a new free one.

        Stable ports keep URLs the same across ``hexmarket dev`` runs on the same data.
        """
        path = self.home / "ports.json"
        try:
            ports: dict[str, int] = json.loads(path.read_text())
        except (OSError, ValueError):
            ports = {}
        port = ports.get(key)
        if not isinstance(port, int) or not _port_free(port):
            port = free_port()
        ports[key] = port
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports))
        return port

    @abstractmethod
    def url(self) -> str:
        """The URL clients use."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line of the server process."""

    @abstractmethod
    def ready(self) -> bool:
        """One readiness probe; ``True`` once the server accepts work."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """One-time preparation of the data directory (runs before every start)."""

    def run_as(self) -> str | None:
        return None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with self.lock:
            if not self.running:
                self._start()

    def _start(self) -> None:
        began = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self.prepare()
        except ServerStartError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerStartError(self.name, f"preparation failed: {exc}", self.log_path) from exc
        self.proc = self._spawn(self.command(), self.log_path)
        deadline = began + self.start_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise ServerStartError(self.name, f"process exited with code {code}", self.log_path)
            if self._probe():
                break
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise ServerStartError(
                    self.name, f"not ready after {self.start_timeout:.0f}s", self.log_path
                )
            time.sleep(POLL_INTERVAL)
        self.started_seconds = time.monotonic() - began

    def _spawn(
        self, argv: list[str], log_path: Path, *, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        user = self.run_as()
        log = log_path.open("ab")
        parent = os.getpid()

        def make() -> subprocess.Popen[bytes]:
            return subprocess.Popen(  # noqa: S603 - argv built from trusted paths
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user is not None else None,
                preexec_fn=_die_with_parent(parent),
            )

        try:
            return _SPAWNER.popen(make)
        except OSError as exc:
            raise ServerStartError(self.name, f"cannot run {argv[0]}: {exc}", log_path) from exc
        finally:
            log.close()

    def run_once(self, argv: list[str], log_path: Path, what: str) -> None:
        """Run a one-time preparation step (``initdb``, Kafka's storage format) to its end,
        two minutes at most; a failure is a ``ServerStartError`` naming ``what``."""
        proc = self._spawn(argv, log_path)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ServerStartError(self.name, f"{what} timed out", log_path) from None
        if code != 0:
            raise ServerStartError(self.name, f"{what} exited with code {code}", log_path)

    def _probe(self) -> bool:
        try:
            return self.ready()
        except Exception:  # a probe that fails means "not yet"
            return False

    def stop(self, *, kill: bool = False) -> None:
        with self.lock:
            self._stop(kill=kill)

    def _stop(self, *, kill: bool) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if kill:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.send_signal(self.stop_signal)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Children left in the server's process group (postgres backends) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


# --- finding programs --------------------------------------------------------------------------


def _scripts_dirs() -> list[Path]:
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def find_executable(name: str, *candidates: Path) -> str | None:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for directory in _scripts_dirs():
        found = shutil.which(name, path=str(directory))
        if found:
            return found
    return shutil.which(name)
