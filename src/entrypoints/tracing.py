"""OpenTelemetry tracing: set up once per process, off unless configured (docs/operations.md,
"Tracing").

Tracing is on when ``HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT`` (or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``) is set, or ``OTEL_TRACES_EXPORTER`` names an exporter
(``otlp``, ``console``); ``OTEL_TRACES_EXPORTER=none`` or ``OTEL_SDK_DISABLED=true`` keep it
off. Off, this module imports nothing of OpenTelemetry and installs nothing: the core's facade
(``core.tracing``) stays a ``None`` check, and the HTTP application is served unwrapped.

On, spans go through a ``BatchSpanProcessor`` (a background thread, bounded queue: a slow or
absent collector drops spans, it never slows a request) to the OTLP/HTTP exporter, which reads
the other standard variables itself (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``_HEADERS``,
``_TIMEOUT``...); sampling follows ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``
(default: every trace, parent-based).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Unpack

from core import tracing as facade
from core.tracing import AttributeValue, Carrier, SpanKind
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer as OtelTracer

INSTRUMENTATION = "hexmarket"
_provider: TracerProvider | None = None


def exporter_name(settings: Settings) -> str | None:
    """The span exporter the settings ask for (``otlp`` / ``console``), ``None``: off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = settings.otel_traces_exporter
    if chosen is None:
        return "otlp" if settings.otel_exporter_otlp_endpoint else None
    return None if chosen == "none" else chosen


def configure(settings: Settings, *, process: str | None = None) -> bool:
    """Turn tracing on for this process if the settings say so; ``True`` if it is on.
    ``process`` (the command: ``serve``, ``relay-outbox``...) names the service unless
    ``OTEL_SERVICE_NAME`` does. Call it once, before the first span."""
    if _provider is not None:  # already on (a second call in the same process)
        return True
    name = exporter_name(settings)
    if name is None:
        return False
    # deferred: OpenTelemetry is optional and loaded only when tracing is on
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    service = settings.otel_service_name or f"hexmarket-{process or 'process'}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter: SpanExporter
    if name == "console":
        exporter = ConsoleSpanExporter()
    else:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint
        if endpoint and not os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        else:
            exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # for libraries that trace through the global API
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Send the project's spans to ``provider`` (tests give one with an in-memory exporter)."""
    global _provider
    _provider = provider
    facade.install(_Tracer(provider.get_tracer(INSTRUMENTATION)))


def uninstall() -> None:
    """Tracing off again (tests)."""
    global _provider
    _provider = None
    facade.install(None)


def wrap_asgi(app: Any, route_of: Callable[[str], str | None]) -> Any:
    """``app`` with a server span per HTTP request when tracing is on (the front's cache hits
    included: it wraps the whole application), else ``app`` itself. The request's own
    ``traceparent`` header, if any, is the span's parent."""
    provider = _provider
    if provider is None:
        return app
    return _ServerSpans(app, provider.get_tracer(INSTRUMENTATION), route_of)


class _ServerSpans:
    """The server span of each HTTP request, named by its route (``GET /order/{order_uid}``)
    once known: Litestar's ``path_template``, or ``route_of(path)`` for the routes the front
    answers ahead of Litestar (``entrypoints.http.front.route_of``). Lean on purpose: the
    generic ``opentelemetry-instrumentation-asgi`` middleware was measured at five times the
    cost of a cache hit (two dozen attributes set twice, metrics, per-send bookkeeping)."""

    def __init__(self, app: Any, tracer: OtelTracer, route_of: Callable[[str], str | None]) -> None:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._app = app
        self._tracer = tracer
        self._propagator = TraceContextTextMapPropagator()
        self._server = SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)
        self._route_of = route_of

    def _route(self, scope: Mapping[str, Any]) -> str | None:
        template = scope.get("path_template")
        if template:
            return str(template)
        return self._route_of(str(scope["path"]))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        carrier = {}
        for key, value in scope["headers"]:
            if key in (b"traceparent", b"tracestate"):
                carrier[key.decode("latin-1")] = value.decode("latin-1")
        method = scope["method"]
        with self._tracer.start_as_current_span(
            method,
            context=self._propagator.extract(carrier) if carrier else None,
            kind=self._server,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(self._error)
                    route = self._route(scope)
                    if route is not None:
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    for key, value in message.get("headers", ()):
                        if key == b"x-cache":
                            span.set_attribute("hexmarket.cache", value.decode("latin-1"))
                await send(message)

            await self._app(scope, receive, sending)


_KINDS: dict[str, Any] = {}


def _kind(kind: SpanKind) -> Any:
    if not _KINDS:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry.trace import SpanKind as Kinds

        _KINDS.update(
            internal=Kinds.INTERNAL,
            server=Kinds.SERVER,
            client=Kinds.CLIENT,
            producer=Kinds.PRODUCER,
            consumer=Kinds.CONSUMER,
        )
    return _KINDS[kind]


class _Span:
    __slots__ = ("otel",)

    def __init__(self, span: OtelSpan) -> None:
        self.otel = span

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.otel.set_attribute(key, value)

    def headers(self) -> Carrier:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry.trace import set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, set_span_in_context(self.otel))
        return carrier

    def end(self) -> None:
        self.otel.end()


class _Tracer:
    """``core.tracing.Tracer`` over an OpenTelemetry tracer; W3C Trace Context carriers."""

    def __init__(self, tracer: OtelTracer) -> None:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry.trace import use_span
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._tracer = tracer
        self._propagator = TraceContextTextMapPropagator()
        self._use_span = use_span

    def _context(self, carrier: Carrier | None) -> Any:
        """The context of a valid ``carrier``, else ``None`` (the current one)."""
        if not carrier:
            return None
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry import trace

        context = self._propagator.extract(carrier)
        return context if trace.get_current_span(context).get_span_context().is_valid else None

    def _links(self, carriers: Sequence[Carrier]) -> list[Any]:
        # deferred: OpenTelemetry is optional and loaded only when tracing is on
        from opentelemetry import trace

        links, seen = [], set()
        for carrier in carriers:
            context = self._context(carrier)
            if context is None:
                continue
            linked = trace.get_current_span(context).get_span_context()
            if (linked.trace_id, linked.span_id) not in seen:
                seen.add((linked.trace_id, linked.span_id))
                links.append(trace.Link(linked))
        return links

    def start(self, name: str, **options: Unpack[facade.SpanOptions]) -> _Span:
        links = options.get("links")
        return _Span(
            self._tracer.start_span(
                name,
                context=self._context(options.get("parent")),
                kind=_kind(options.get("kind", "internal")),
                attributes=options.get("attributes"),
                links=self._links(links) if links else None,
            )
        )

    @contextmanager
    def span(self, name: str, **options: Unpack[facade.SpanOptions]) -> Iterator[facade.Span]:
        started = self.start(name, **options)
        with self._use_span(started.otel, end_on_exit=True):  # as start_as_current_span does
            yield started

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        self._propagator.inject(carrier)


def flush() -> None:
    """Export the spans still queued (a process about to ``os._exit``); no-op when off."""
    provider = _provider
    if provider is not None:
        provider.force_flush(timeout_millis=5000)
