"""Tracing in tests: the project's spans sent to the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from entrypoints import tracing


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the block, every ended span kept by the returned exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def spans_until(
    exporter: InMemorySpanExporter,
    done: Callable[[Sequence[ReadableSpan]], bool],
    *,
    within: float = 60.0,
    what: str = "the spans",
) -> Sequence[ReadableSpan]:
    """The finished spans once ``done`` holds for them (polled, with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        spans = exporter.get_finished_spans()
        if done(spans):
            return spans
        if loop.time() > deadline:
            raise AssertionError(f"{what} not recorded within {within}s: {[s.name for s in spans]}")
        await asyncio.sleep(0.05)


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def linked_traces(span: ReadableSpan) -> set[int]:
    return {link.context.trace_id for link in span.links}
