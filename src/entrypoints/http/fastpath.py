"""A finished response for the measured hot paths (``GET /order/{uid}``, ``GET /goods/list``).

Litestar hands any ASGI app a handler returns straight to the server, so a handler annotated
``-> ASGIApp`` may return a :class:`BytesResponse` (prepared bytes and raw headers, two ASGI
messages) on its hot path and an ordinary Litestar ``Response`` elsewhere. Building a Litestar
``Response`` (header normalisation, media-type rendering) was measured at about a third of a
cache hit's time in the app; errors still go through the app's one exception table, and
routing, guards, middleware and the OpenAPI description are Litestar's as for any handler.
"""

from __future__ import annotations

from litestar.types import Receive, Scope, Send

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


_NO_BODY = frozenset({204, 304})


class BytesResponse:
    """Status, raw (lower-case) headers and a body; ``content-length`` is added here, except
    for a status that carries no body (204, 304), as Litestar's ``Response`` does."""

    __slots__ = ("_body", "_headers", "_status")

    def __init__(
        self, body: bytes, headers: list[tuple[bytes, bytes]], *, status: int = 200
    ) -> None:
        if status in _NO_BODY:
            if body:
                raise ValueError(f"a {status} response has no body")
            self._headers = headers
        else:
            self._headers = [*headers, (b"content-length", b"%d" % len(body))]
        self._body = body
        self._status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self._headers}
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})


def json_response(body: bytes, *headers: tuple[bytes, bytes]) -> BytesResponse:
    """A ``200 application/json`` response of ``body`` (already serialized) and ``headers``."""
    return BytesResponse(body, [JSON_CONTENT_TYPE, *headers])


def request_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (given in lower case), read from the raw
    ASGI headers without building a headers object."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value
    return None


def etag_of(digest: str) -> str:
    """The strong ETag of a document with this digest (``OrderDocument.digest``)."""
    return f'"{digest}"'


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal under weak comparison."""
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False
