"""uvicorn's httptools protocol with the limits a server facing the open network needs.

uvicorn closes a connection that stays idle *after* a response (``timeout_keep_alive``), but
not one that never sends a request, nor one that sends a request slowly (half a request line,
a header every few seconds: "slowloris"), and its httptools parser takes a request head of
any size. Each of those holds a socket and memory for as long as the client wants. This
protocol adds, per connection:

- a read deadline: a request (head and body) must arrive whole within ``read_timeout``
  seconds of the connection opening, or of its first byte on a kept-alive connection; else
  the connection is closed;
- a head limit: at most ``MAX_HEAD_BYTES`` of request line and headers and ``MAX_HEADERS``
  header fields; a larger head is answered ``431`` and the connection closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
READ_TIMEOUT = 10.0


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request head over the limits."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a request read deadline and request head limits.

    Per request this costs a clock read and two attribute writes: one timer per connection
    (not per request) checks the deadline and re-arms itself for the time left."""

    read_timeout: float = READ_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: asyncio.TimerHandle | None = None
        self._reading_since: float | None = None
        self._head_bytes = 0
        self._header_count = 0

    # --- the read deadline ---------------------------------------------------------------------
    def _check_deadline(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        since, now = self._reading_since, self.loop.time()
        if since is not None and now - since >= self.read_timeout:
            self.transport.close()
            return
        left = self.read_timeout if since is None else since + self.read_timeout - now
        self._watch = self.loop.call_later(left, self._check_deadline)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_since = self.loop.time()
        self._watch = self.loop.call_later(self.read_timeout, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._header_count = 0
        if self._reading_since is None:
            self._reading_since = self.loop.time()

    def on_message_complete(self) -> None:
        self._reading_since = None
        super().on_message_complete()

    # --- the head limits -------------------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._head_bytes > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            raise _HeadTooLarge
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in a callback as a parser error (uvicorn then
        # answers 400): a head over the limits is a 431 instead.
        if self._head_bytes > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            self._refuse_head()
            return
        super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._reading_since = None
        message = b"Request header fields too large"
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(message),
                    b"connection: close\r\n\r\n",
                    message,
                ]
            )
        )
        self.transport.close()


def protocol_class(read_timeout: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this read deadline."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"read_timeout": read_timeout, "__module__": __name__},
    )
