"""Which servers a process needs, and a short, real check that each one answers.

Used twice: the CLI checks every server a process needs before starting it (exit 1 with
``error: cannot reach PostgreSQL at postgresql://app:***@db:5432/app: connection refused``), and
``GET /ready`` runs the same checks for the servers the HTTP process (or ``hexmarket dev``) uses.
Each check opens its own short-lived connection with a timeout: a pool that is stuck still
shows up as not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import attrs

from entrypoints.settings import Settings

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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _host_ports(dep: Dependency) -> list[tuple[str, int]]:
    if dep.name == "kafka":
        out = []
        for server in dep.url.split(","):
            host, _, port = server.strip().rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out
    if dep.name == "postgres" and "://" not in dep.url:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(dep.url)
        return [(str(params.get("host") or "localhost"), int(params.get("port") or 5432))]
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


async def _postgres(url: str, within: float) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(within)))
    async with conn:
        await conn.execute("SELECT 1")


async def _redis(url: str, within: float) -> None:
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(url, socket_connect_timeout=within, socket_timeout=within)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _nats(host: str, port: int, within: float) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    try:
        line = await asyncio.wait_for(reader.readline(), within)
        if not line.startswith(b"INFO"):
            raise ConnectionError("not a NATS server (no INFO greeting)")
        if b'"jetstream":true' not in line.replace(b" ", b""):
            raise ConnectionError("JetStream is not enabled (start nats-server with -js)")
    finally:
        writer.close()


def _kafka(bootstrap: str, within: float) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(within * 1000)})
    try:
        admin.list_topics(timeout=within)
    except KafkaException as exc:
        raise ConnectionError(str(exc.args[0]) if exc.args else "no broker answered") from exc


def _clickhouse(url: str, within: float) -> None:
    import clickhouse_connect

    client = clickhouse_connect.get_client(
        dsn=url, connect_timeout=within, send_receive_timeout=within
    )
    try:
        client.command("SELECT 1")
    finally:
        client.close()


async def check(dep: Dependency, *, within: float = 2.0) -> None:
    """Raise ``UnreachableError`` unless the server answers in about ``within`` seconds."""
    if not dep.url:
        var = f"HEXMARKET_{_SETTING[dep.name].upper()}"
        raise UnreachableError(dep, f"{NOT_CONFIGURED} (set {var})")
    if dep.name == "clickhouse" and dep.url.startswith("chdb://"):
        return  # the embedded engine runs inside this process
    try:
        for host, port in _host_ports(dep):
            await _tcp(host, port, within)
        if dep.name == "postgres":
            await asyncio.wait_for(_postgres(dep.url, within), within + 1)
        elif dep.name == "redis":
            await asyncio.wait_for(_redis(dep.url, within), within + 1)
        elif dep.name == "nats":
            host, port = _host_ports(dep)[0]
            await _nats(host, port, within)
        elif dep.name == "kafka":
            await asyncio.wait_for(asyncio.to_thread(_kafka, dep.url, within), within + 1)
        elif dep.name == "clickhouse":
            await asyncio.wait_for(asyncio.to_thread(_clickhouse, dep.url, within), within + 1)
    except UnreachableError:
        raise
    except Exception as exc:
        raise UnreachableError(dep, _reason(exc)) from exc


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
