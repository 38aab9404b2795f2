"""Which servers a process needs, and a short, real check that each one answers.

Two kinds of check, neither with a client library of its own:

- before a process starts, ``check`` / ``check_all``: the CLI checks every server the process
  needs (exit 1 with ``error: cannot reach PostgreSQL at postgresql://app:***@db:5432/app:
  connection refused``): a TCP connection, then the adapter's ``probe`` on a short-lived client;
- while it runs, ``Readiness`` (``GET /ready``, the ``hexmarket_dependency_up`` gauges of
  ``/metrics``): each server asked through the ``ping()`` of the port the process holds
  (``port_of``), within a timeout, so a stuck pool shows up as not ready; a TCP connection
  then says why a server is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import attrs

from entrypoints.settings import Settings

if TYPE_CHECKING:
    from entrypoints.container import Container

Role = Literal["serve", "consume-orders", "relay-outbox", "write-logs", "migrate", "produce-orders"]
ALL_ROLES: tuple[Role, ...] = ("serve", "consume-orders", "relay-outbox", "write-logs")

LABELS = {
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "nats": "NATS",
    "kafka": "Kafka",
    "clickhouse": "ClickHouse",
}
_SETTING = {
    "postgres": "postgres_url",
    "redis": "redis_url",
    "nats": "nats_url",
    "kafka": "kafka_bootstrap_servers",
    "clickhouse": "clickhouse_url",
}


class ConfigurationError(Exception):
    """The settings cannot work for the process (a needed URL is missing)."""


class UnreachableError(Exception):
    """A server did not answer its check. ``str()`` is the one-line reason."""

    def __init__(self, dependency: Dependency, reason: str) -> None:
        self.dependency = dependency
        self.reason = reason
        super().__init__(f"cannot reach {dependency.label} at {dependency.display_url}: {reason}")


@attrs.frozen(kw_only=True)
class Dependency:
    """One server a process talks to."""

    name: str
    url: str

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def display_url(self) -> str:
        return mask_password(self.url)


def mask_password(url: str) -> str:
    """``scheme://user:***@host/...``: URLs are printed, passwords never."""
    if "://" not in url:  # libpq key=value
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


#: Servers a role can start without: the HTTP API serves orders and the catalog with no
#: ClickHouse configured (``GET /logs`` answers 503, ``/ready`` names it as not configured).
OPTIONAL: frozenset[tuple[Role, str]] = frozenset({("serve", "clickhouse")})
NOT_CONFIGURED = "not configured"


def _names_for(settings: Settings, role: Role) -> list[str]:
    names: list[str] = []
    if role == "serve":
        if "postgres" in (settings.catalog_store, settings.orders_store):
            names.append("postgres")
        if settings.list_cache == "redis" or settings.orders_cache == "redis":
            names.append("redis")
        if settings.log_store == "clickhouse":
            names.append("clickhouse")
    elif role == "consume-orders":
        if settings.orders_store == "postgres":
            names.append("postgres")
        names.append(settings.orders_broker)
    elif role == "relay-outbox":
        if settings.catalog_store == "postgres":
            names.append("postgres")
        names.append(settings.events_broker)
    elif role == "write-logs":
        names.append(settings.events_broker)
        if settings.log_store == "clickhouse":
            names.append("clickhouse")
    elif role == "migrate":
        names.append("postgres")
    elif role == "produce-orders":
        names.append(settings.orders_broker)
    return [name for name in names if name != "memory"]


def needed(settings: Settings, roles: Iterable[Role]) -> list[Dependency]:
    """The servers the given process roles need, in a stable order, each once.

    Raises ``ConfigurationError`` naming the environment variable of a missing URL, except for
    an ``OPTIONAL`` one: that comes back with an empty ``url`` (its check fails as not
    configured, the start-up checks skip it).
    """
    seen: dict[str, Dependency] = {}
    for role in roles:
        for name in _names_for(settings, role):
            if name in seen:
                continue
            url = getattr(settings, _SETTING[name])
            var = (
                "KAFKA_BOOTSTRAP_SERVERS"
                if name == "kafka"
                else f"HEXMARKET_{_SETTING[name].upper()}"
            )
            if not url and (role, name) in OPTIONAL:
                seen[name] = Dependency(name=name, url="")  # reported, never dialled
                continue
            if not url:
                raise ConfigurationError(
                    f"{role} needs {LABELS[name]}: set {var}"
                    + (
                        " (or run `hexmarket dev`, which starts embedded servers)"
                        if role != "migrate"
                        else ""
                    )
                )
            seen[name] = Dependency(name=name, url=url)
    order = list(LABELS)
    return sorted(seen.values(), key=lambda dep: order.index(dep.name))


def _reason(exc: BaseException, dep: Dependency | None = None) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if dep is not None and dep.url:
        text = text.replace(dep.url, dep.display_url)  # a driver may quote the URL it was given
    return text[:200]


_CONNINFO = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _host_ports(dep: Dependency) -> list[tuple[str, int]]:
    if dep.name == "kafka":
        out = []
        for server in dep.url.split(","):
            host, _, port = server.strip().rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out
    if dep.name == "postgres" and "://" not in dep.url:  # libpq key=value
        params = {key: value.strip("'") for key, value in _CONNINFO.findall(dep.url)}
        return [(params.get("host") or "localhost", int(params.get("port") or 5432))]
    parts = urlsplit(dep.url)
    default = {"postgres": 5432, "redis": 6379, "nats": 4222, "clickhouse": 8123}[dep.name]
    if parts.scheme == "https":
        default = 8443
    return [(parts.hostname or "localhost", parts.port or default)]


async def _tcp(host: str, port: int, within: float) -> None:
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _reachable(dep: Dependency, within: float) -> None:
    """Raise the connection error unless every ``host:port`` of ``dep`` accepts a TCP
    connection: says why a server is unreachable (refused, unknown host, timed out) in the
    same words whichever client failed, with no client library."""
    for host, port in _host_ports(dep):
        await _tcp(host, port, within)


_PROBES = {
    "postgres": "adapters.postgres.probe",
    "redis": "adapters.redis_cache",
    "nats": "adapters.nats_bus",
    "kafka": "adapters.kafka_bus",
    "clickhouse": "adapters.clickhouse_log",
}
"""The adapter module whose ``probe(url, within)`` checks each server with a client of its own
(imported when needed: a process loads only the client libraries of the servers it uses)."""


async def check(dep: Dependency, *, within: float = 2.0) -> None:
    """Raise ``UnreachableError`` unless the server answers in about ``within`` seconds: a TCP
    connection, then the adapter's own check (``probe``) on a short-lived client. Used before a
    process starts, when the clients it will hold do not exist yet."""
    if not dep.url:
        raise UnreachableError(dep, _not_configured(dep))
    if dep.name == "clickhouse" and dep.url.startswith("chdb://"):
        return  # the embedded engine runs inside this process
    try:
        await _reachable(dep, within)
        probe = importlib.import_module(_PROBES[dep.name]).probe
        await asyncio.wait_for(probe(dep.url, within), within + 1)
    except Exception as exc:
        raise UnreachableError(dep, _reason(exc, dep)) from exc


def _not_configured(dep: Dependency) -> str:
    return f"{NOT_CONFIGURED} (set HEXMARKET_{_SETTING[dep.name].upper()})"


async def check_all(deps: Iterable[Dependency], *, within: float = 2.0) -> dict[str, str | None]:
    """Check every dependency concurrently: name -> ``None`` when up, else the reason."""
    deps = list(deps)

    async def one(dep: Dependency) -> str | None:
        try:
            await check(dep, within=within)
        except UnreachableError as exc:
            return exc.reason
        return None

    results = await asyncio.gather(*(one(dep) for dep in deps))
    return {dep.name: result for dep, result in zip(deps, results, strict=True)}


# --- readiness of a running process: through the ports it holds -------------------------------


class Reachable(Protocol):
    async def ping(self) -> None: ...


def port_of(container: Container, name: str) -> Callable[[], Any]:
    """The container provider of a port through which this process talks to server ``name``
    (its ``ping`` is the readiness check): the catalog store or the order repository for
    PostgreSQL, the list or orders cache for Redis, the events or orders bus for a broker, the
    log store for ClickHouse."""
    settings = container.settings()
    if name == "postgres":
        if settings.catalog_store == "postgres":
            return container.catalog_store
        return container.orders_repository
    if name == "redis":
        return container.list_cache if settings.list_cache == "redis" else container.orders_cache
    if name in ("nats", "kafka"):
        return container.events_bus if settings.events_broker == name else container.orders_bus
    if name == "clickhouse":
        return container.log_store
    raise ValueError(f"no port talks to {name!r}")


def client_of(container: Container, name: str) -> Callable[[], Any] | None:
    """The container's shared client (a ``Resource``) that ``port_of(container, name)`` is
    built on, if it has one apart from the port: the pool, the Redis client."""
    if name == "postgres":
        return container.pg_pool
    if name == "redis":
        return container.redis
    return None


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Readiness:
    """The readiness checks of one process: each server it needs asked through the port the
    process already holds (``port_of``; its client, not a new connection), the answers reused
    for ``ready_cache_seconds``; concurrent calls share one round of checks."""

    def __init__(self, container: Container, roles: Sequence[Role], *, within: float = 2.0) -> None:
        self._container = container
        settings = container.settings()
        self._deps = needed(settings, roles)
        self._ttl = settings.ready_cache_seconds
        self._within = within
        self._lock = asyncio.Lock()
        self._results: dict[str, str | None] = {}
        self._until = float("-inf")

    async def results(self) -> dict[str, str | None]:
        """Server name -> ``None`` when it answers, else the reason."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._until:
            return self._results
        async with self._lock:
            if loop.time() < self._until:  # another call checked while this one waited
                return self._results
            answers = await asyncio.gather(*(self._check(dep) for dep in self._deps))
            self._results = dict(zip((dep.name for dep in self._deps), answers, strict=True))
            self._until = loop.time() + self._ttl
            return self._results

    async def _check(self, dep: Dependency) -> str | None:
        if not dep.url:
            return _not_configured(dep)
        try:
            async with asyncio.timeout(self._within):
                # The shared client first, itself: a timeout then cancels the pool's opening
                # cleanly (cancelling a port that waits on it would leave the opening running).
                client = client_of(self._container, dep.name)
                if client is not None:
                    await _resolved(client())
                reachable: Reachable = await _resolved(port_of(self._container, dep.name)())
                await reachable.ping()
        except Exception as exc:
            if dep.name == "clickhouse" and dep.url.startswith("chdb://"):
                return _reason(exc, dep)  # in this process: no network to ask
            try:  # down, or the client is stuck: the network says which
                await _reachable(dep, self._within)
            except Exception as unreachable:
                return _reason(unreachable, dep)
            return _reason(exc, dep)
        return None
