"""Tracing as the core and the adapters see it: a facade with no tracing library behind it.

Like ``logging``, it is configured once per process from outside (``entrypoints.tracing``
installs an OpenTelemetry-backed ``Tracer``); until then, and whenever tracing is off,
``tracer()`` is ``None`` and ``span()`` hands back one shared no-op context manager, so a
traced call costs a function call and a ``None`` check.

Trace context travels as plain text: W3C Trace Context headers (``traceparent``, and
``tracestate`` when there is one) in a ``Mapping[str, str]`` carrier — the headers of a broker
message, or a ``traceparent`` stored with an outbox record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Literal, Protocol, TypedDict, Unpack

AttributeValue = str | int | float | bool
SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
Carrier = Mapping[str, str]
"""Headers that may hold ``traceparent`` / ``tracestate`` (other keys are ignored)."""

TRACEPARENT = "traceparent"
_EMPTY: Carrier = MappingProxyType({})


class Span(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Record ``key = value`` on the span (ignored once it ended)."""
        ...

    def headers(self) -> Carrier:
        """This span's context as W3C Trace Context headers; empty when not tracing."""
        ...

    def end(self) -> None:
        """End a span from ``Tracer.start`` (spans of ``Tracer.span`` end with their block)."""
        ...


class SpanOptions(TypedDict, total=False):
    """What a span is given besides its name (``Tracer.span``, ``Tracer.start``, ``span``)."""

    kind: SpanKind
    """``internal`` unless given."""
    attributes: Mapping[str, AttributeValue] | None
    parent: Carrier | None
    """The span is a child of ``parent`` when that carries a valid context, else of the
    current span."""
    links: Sequence[Carrier]
    """Contexts the span relates to (the messages of a batch), each valid one linked once."""


class Tracer(Protocol):
    def span(self, name: str, **options: Unpack[SpanOptions]) -> AbstractContextManager[Span]:
        """A span current for the block. An exception leaving the block is recorded on the
        span, which ends with the block."""
        ...

    def start(self, name: str, **options: Unpack[SpanOptions]) -> Span:
        """A span that is not made current; the caller ends it."""
        ...

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Write the current span's context into ``carrier`` (nothing without one)."""
        ...


class _NoSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        return None

    def headers(self) -> Carrier:
        return _EMPTY

    def end(self) -> None:
        return None


NO_SPAN: Span = _NoSpan()
_NO_SPAN_BLOCK: AbstractContextManager[Span] = contextlib.nullcontext(NO_SPAN)
_tracer: Tracer | None = None


def install(tracer: Tracer | None) -> None:
    """Send every span of the process to ``tracer`` from now on (``None``: tracing off)."""
    global _tracer
    _tracer = tracer


def tracer() -> Tracer | None:
    """The installed tracer, ``None`` when tracing is off."""
    return _tracer


def span(name: str, **options: Unpack[SpanOptions]) -> AbstractContextManager[Span]:
    """``Tracer.span`` of the installed tracer; a shared no-op block when tracing is off."""
    current = _tracer
    if current is None:
        return _NO_SPAN_BLOCK
    return current.span(name, **options)


def traceparent() -> str | None:
    """The current span's ``traceparent`` header, ``None`` when not tracing."""
    current = _tracer
    if current is None:
        return None
    carrier: dict[str, str] = {}
    current.inject(carrier)
    return carrier.get(TRACEPARENT)


SETTLE: Mapping[str, AttributeValue] = MappingProxyType({"messaging.operation.type": "settle"})


def send_span(system: str, topic: str, count: int) -> AbstractContextManager[Span]:
    """The ``send {topic}`` span of a producer publishing ``count`` messages to ``topic`` on
    ``system`` (``kafka``, ``nats``: the OpenTelemetry messaging conventions). A shared no-op
    block when tracing is off."""
    current = _tracer
    if current is None:
        return _NO_SPAN_BLOCK
    return current.span(
        f"send {topic}",
        kind="producer",
        attributes={
            "messaging.system": system,
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
        },
    )


def process_span(
    topic: str, group: str, carriers: Iterable[Carrier], count: int
) -> AbstractContextManager[Span]:
    """The ``process {topic}`` span of a consumer handling one batch of messages (the
    OpenTelemetry messaging conventions): linked to each message's context, and its child
    when they share one (``batch_context``); ``carriers``: the ``count`` messages' headers,
    read only when tracing. A shared no-op block when tracing is off."""
    current = _tracer
    if current is None:
        return _NO_SPAN_BLOCK
    parent, links = batch_context(list(carriers))
    return current.span(
        f"process {topic}",
        kind="consumer",
        parent=parent,
        links=links,
        attributes={
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.batch.message_count": count,
        },
    )


def batch_context(carriers: Sequence[Carrier]) -> tuple[Carrier | None, list[Carrier]]:
    """The parent and links of a span handling a batch of messages (the OpenTelemetry
    messaging conventions): links to each distinct context the messages carry, and that
    context as the parent too when there is exactly one (one message, or one producer's
    batch), so the span joins the producer's trace."""
    seen: dict[str, Carrier] = {}
    for carrier in carriers:
        value = carrier.get(TRACEPARENT)
        if value and value not in seen:
            seen[value] = carrier
    links = list(seen.values())
    return (links[0] if len(links) == 1 else None), links
