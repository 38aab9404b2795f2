"""Optional bearer token for the mutating routes (``HEXMARKET_API_TOKEN``).

Unset means open, as in the public task. When set, every POST, PUT, PATCH and DELETE needs
``Authorization: Bearer <token>``; a missing or wrong token is a 401 in the error envelope (the
app's exception table renders ``NotAuthorizedException``). Reads stay open.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_guard(expected: str) -> Guard:
    """A Litestar guard admitting mutating requests that carry ``expected`` as bearer token."""
    wanted = expected.encode()

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method", "GET") not in MUTATING:
            return
        given = bearer_token(connection.headers.get("authorization"))
        if given is None or not hmac.compare_digest(given.encode(), wanted):
            raise NotAuthorizedException(
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="hexmarket"'},
            )

    return guard


def guards(api_token: str | None) -> list[Guard]:
    """The app-level guards for this configuration: none when no token is set."""
    return [token_guard(api_token)] if api_token else []
