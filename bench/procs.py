"""Child processes of a benchmark: started with an environment, awaited with a deadline,
measured (RSS) and always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


class ProcessError(RuntimeError):
    """A child process died or did not become ready in time."""


def wait_until(
    probe: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.05
) -> float:
    """Poll ``probe`` until true; return the seconds it took. Raises after ``timeout_s``."""
    began = time.monotonic()
    deadline = began + timeout_s
    while True:
        try:
            if probe():
                return time.monotonic() - began
        except ProcessError:
            raise
        except Exception:  # a failing probe means "not yet"  # noqa: S110
            pass
        if time.monotonic() > deadline:
            raise ProcessError(f"{what}: not done after {timeout_s:.0f}s")
        time.sleep(interval_s)


def http_get(host: str, port: int, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """SIGKILL the child if the benchmark dies without stopping it (Linux)."""

    def preexec() -> None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class Child:
    """One child process with its log file; ``stop()`` is idempotent."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), full_env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - argv built by the benchmark
                list(argv),
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=REPO_ROOT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise ProcessError(
                f"{self.name} exited with {self.proc.returncode}; log tail:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children."""
        root = psutil.Process(self.pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return int(total)

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


class HttpServer(Child):
    """A child serving HTTP on ``host:port``; ``wait_ready`` polls ``ready_path`` for a 200."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        host: str,
        port: int,
    ) -> None:
        super().__init__(name, argv, env=env, log_dir=log_dir)
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_ready(self, path: str, timeout_s: float = 60.0) -> None:
        def probe() -> bool:
            self.check_alive()
            status, _ = http_get(self.host, self.port, path, timeout_s=2)
            return status == 200

        try:
            wait_until(probe, timeout_s=timeout_s, what=f"{self.name} {path}")
        except ProcessError as exc:
            if "exited" in str(exc):
                raise
            raise ProcessError(f"{exc}; log tail:\n{self.log_tail()}") from exc

    def get(self, path: str) -> tuple[int, bytes]:
        return http_get(self.host, self.port, path)


def await_line(child: Child, prefix: str, *, timeout_s: float) -> str:
    """The first line of the child's output (its log) starting with ``prefix``, polled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in child.log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        child.check_alive()
        time.sleep(0.02)
    raise ProcessError(
        f"{child.name}: no '{prefix}' after {timeout_s:.0f}s; log:\n{child.log_tail()}"
    )


def _tell(child: Child, word: str) -> None:
    if child.proc.stdin is not None and child.alive():
        with contextlib.suppress(OSError):
            child.proc.stdin.write(f"{word}\n".encode())
            child.proc.stdin.flush()


def gated_run(child: Child, *, timeout_s: float, also: Sequence[Child] = ()) -> float:
    """Drive ``bench.worker`` children: wait until each says ``ready``, say ``go`` to all
    (``child`` last), return the seconds ``child`` reports in its ``done <s>`` line, then
    say ``stop`` to all."""
    for each in (*also, child):
        await_line(each, "ready", timeout_s=120)
    try:
        for each in (*also, child):
            _tell(each, "go")
        line = await_line(child, "done", timeout_s=timeout_s)
        return float(line.split()[1])
    finally:
        for each in (child, *also):
            _tell(each, "stop")


@contextlib.contextmanager
def running(*children: Child) -> Iterator[None]:
    """Stop every child on the way out, whatever happened."""
    try:
        yield
    finally:
        for child in reversed(children):
            child.stop()
