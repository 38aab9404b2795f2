"""What the HTTP edge refuses before any handler runs, and the headers every response carries.

- ``Host``: when ``HEXMARKET_ALLOWED_HOSTS`` is set (and, by default, when the server listens
  on a loopback address), a request naming another host is a 400: a page on another site that
  re-points its own name at this address (DNS rebinding) cannot read or write through it.
- Mutations (POST, PUT, PATCH, DELETE): a body must be ``application/json`` (415 otherwise),
  and a request carrying an ``Origin`` header must come from this server's own origin or one in
  ``HEXMARKET_ALLOWED_ORIGINS`` (403 otherwise). Together they refuse the "simple" cross-site
  requests a browser sends without asking (an HTML form, ``fetch(..., {mode: "no-cors"})``).
- Query strings: each parameter once, and integer parameters as plain decimal digits (``2e0``,
  ``1.0`` and ``１`` are 400), not the last of several values or a float that happens to be whole.
- JSON bodies nested too deeply for the decoder are a 400 like any other malformed JSON.

The headers (``SECURITY_HEADERS``) are sent by the hot routes' front and by Litestar alike
(``entrypoints.http.front``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast
from urllib.parse import unquote_plus

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Guard

from core.errors import ValidationError
from entrypoints.http.auth import MUTATING
from entrypoints.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
"""Sent on every response: no framing (clickjacking), no script, style or connection to another
host, no MIME sniffing, no ``Referer`` leaving the page, no cross-origin embedding."""

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_LOOPBACK_LISTEN = ("localhost", "::1")

INTEGER_PARAMETERS = frozenset({"id", "projectId", "campaignId", "limit", "offset"})
"""The query parameters the routes read as integers (``entrypoints.http.catalog``, ``.logs``)."""
_INTEGER = re.compile(r"-?[0-9]+")
REPEATABLE_PARAMETERS = frozenset({"type"})
TEXT_PARAMETERS = frozenset({"since", "until", "before"})
DATETIME_PARAMETERS = frozenset({"since", "until"})
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"  # naive: read as UTC
)


def _is_rfc3339(raw: bytes) -> bool:
    """A date-time as the schema says (not a bare number Litestar would read as a timestamp)."""
    value = unquote_plus(raw.decode("latin-1"), encoding="utf-8", errors="replace")
    return _RFC3339.fullmatch(value) is not None


"""Optional string parameters: ``null`` is not a value of theirs (Litestar would read it as
absent, which the schema does not allow)."""
"""Query parameters a route reads as a list (``GET /logs?type=create&type=update``)."""


def host_names(value: str | None) -> frozenset[bytes] | None:
    """The host names of a comma-separated ``HEXMARKET_ALLOWED_HOSTS``, lower case, without
    port; ``None`` for any host (unset, empty or ``*``)."""
    names = [name.strip().lower() for name in (value or "").split(",") if name.strip()]
    if not names or "*" in names:
        return None
    return frozenset(hostname(name.encode()) for name in names)


def loopback_hosts(listen_host: str) -> frozenset[bytes] | None:
    """The default allowed hosts of a server listening on ``listen_host``: the loopback names
    for a loopback address (only this machine reaches it), else ``None`` (any)."""
    if listen_host.startswith("127.") or listen_host in _LOOPBACK_LISTEN:
        return frozenset(name.encode() for name in LOOPBACK_HOSTS)
    return None


def hostname(host: bytes) -> bytes:
    """A ``Host`` header's name without the port, lower case (``[::1]:8080`` -> ``[::1]``)."""
    if host.startswith(b"["):
        return host.partition(b"]")[0].lower() + b"]"
    return host.partition(b":")[0].lower()


def origins(value: str | None) -> frozenset[str] | None:
    """``HEXMARKET_ALLOWED_ORIGINS`` as a set of ``scheme://host[:port]``; ``None`` for any."""
    names = [name.strip().rstrip("/").lower() for name in (value or "").split(",")]
    names = [name for name in names if name]
    if "*" in names:
        return None
    return frozenset(names)


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _has_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    length = connection.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in connection.headers


def _same_origin(origin: str, host: str | None) -> bool:
    """``Origin`` names the host the request was sent to (any scheme: a proxy may end TLS)."""
    _, sep, netloc = origin.partition("://")
    return bool(sep) and host is not None and netloc == host.strip().lower()


def mutation_guard(allowed_origins: frozenset[str] | None) -> Guard:
    """Refuse a mutation from another origin (403) or with a body that is not JSON (415)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method", "GET") not in MUTATING:
            return
        origin = connection.headers.get("origin")
        if origin is not None and allowed_origins is not None:
            origin = origin.strip().lower()
            if origin not in allowed_origins and not _same_origin(
                origin, connection.headers.get("host")
            ):
                raise PermissionDeniedException(detail="cross-origin request refused")
        if _has_body(connection):
            media_type = _media_type(connection.headers.get("content-type", ""))
            if media_type != "application/json" and not media_type.endswith("+json"):
                raise HTTPException(
                    status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    detail="the body must be application/json",
                )

    return guard


async def query_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Each query parameter once; integer parameters as plain decimal digits. (Guards are
    coroutines: Litestar runs a plain function guard in a worker thread, a thread hop per
    request measured at a sixth of a cache miss's cost.)"""
    query: bytes = connection.scope.get("query_string", b"")
    if not query:
        return
    seen: set[str] = set()
    for part in query.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = unquote_plus(raw_name.decode("latin-1"), encoding="utf-8", errors="replace")
        if name in seen and name not in REPEATABLE_PARAMETERS:
            raise ValidationError(details={name: "must be given once"})
        seen.add(name)
        if name in TEXT_PARAMETERS and raw_value in (b"", b"null"):
            raise ValidationError(details={name: "must be given a value"})
        if name in DATETIME_PARAMETERS and not _is_rfc3339(raw_value):
            raise ValidationError(details={name: "must be an RFC 3339 date-time"})
        if name in INTEGER_PARAMETERS:
            value = unquote_plus(raw_value.decode("latin-1"), encoding="utf-8", errors="replace")
            if not _INTEGER.fullmatch(value):
                raise ValidationError(details={name: "must be an integer (decimal digits)"})


def guards(settings: Settings) -> list[Guard]:
    """The edge's app-level guards for this configuration."""
    return [query_guard, mutation_guard(origins(settings.allowed_origins))]


def one_guard(checks: Sequence[Guard]) -> Guard:
    """``checks`` (coroutine guards) as one guard, in order: Litestar copies the route handler
    for every guard it calls, a cost each request through Litestar paid once per guard."""
    steps = [cast("Callable[..., Awaitable[None]]", check) for check in checks]

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        for step in steps:
            await step(connection, handler)

    return guard


class EdgeRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body nested too deeply for the decoder is a 400 (malformed
    JSON), not a ``RecursionError`` escaping as a 500 with a trace in the log."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            raise ClientException(detail="nested too deeply") from exc
