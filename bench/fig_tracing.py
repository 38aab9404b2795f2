"""The cost of tracing on the hottest path, ``GET /order/{uid}`` cache hits: ``hexmarket
serve`` with tracing off (the default: the application is served unwrapped, the front's path
runs no tracing code at all) against the same server with tracing on, every request a server
span exported over OTLP/HTTP (``BatchSpanProcessor``, protobuf) to a local collector stand-in
that accepts and discards them; and, for information, tracing on with 1% of the traces
sampled (``OTEL_TRACES_SAMPLER``). Alternated runs over the same warmed orders."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs

from bench.context import Bench
from bench.fig_http import (
    ORDER_CONNECTIONS,
    Rows,
    _cached_orders,
    _compare,
    all_cache_hits,
    rps_and_p99,
)
from bench.hexmarket import HOST, require_module, serve
from bench.procs import ProcessError, running
from bench.report import Figure

#: the sampling ratio of the third contender (OTEL_TRACES_SAMPLER=parentbased_traceidratio)
SAMPLED = 0.01


@attrs.define
class Sink:
    """What the stand-in collector received."""

    url: str
    requests: int = 0
    bytes: int = 0


@contextmanager
def otlp_sink() -> Iterator[Sink]:
    """An OTLP/HTTP endpoint on a free loopback port answering every export with success
    (an empty ``ExportTraceServiceResponse``) and keeping nothing but counts."""
    sink = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            self.rfile.read(size)
            sink.requests += 1
            sink.bytes += size
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((HOST, 0), Handler)
    sink.url = f"http://{HOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def tracing_cost(bench: Bench) -> list[Figure]:
    require_module("entrypoints.tracing", "tracing")
    require_module("opentelemetry.sdk", "the tracing extra (opentelemetry-sdk)")
    paths, env = _cached_orders(bench, "t")
    with otlp_sink() as sink:
        off = serve(bench, "hexmarket-tracing-off", env)
        on = serve(
            bench,
            "hexmarket-tracing-on",
            {**env, "HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
        )
        sampled = serve(
            bench,
            "hexmarket-tracing-sampled",
            {
                **env,
                "HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(SAMPLED),
            },
        )
        with running(off, on, sampled):
            for server in (off, on, sampled):
                all_cache_hits(server, paths)
            contest = _compare(bench, [on, off, sampled], paths, ORDER_CONNECTIONS)
        if sink.requests == 0:
            raise ProcessError("tracing on exported no span to the collector stand-in")
    rows = Rows(
        key="tracing",
        title=f"GET /order/{{uid}} cache hit, {ORDER_CONNECTIONS} conns, tracing on",
        ceiling_label="the same server, tracing off (the default)",
        reference_label=f"tracing on, {SAMPLED:.0%} of traces sampled",
        rps_note=(
            "informative: a server span per request, exported over OTLP/HTTP to a local"
            f" stand-in ({sink.requests:,} exports, {sink.bytes / 2**20:.1f} MiB); tracing"
            " off serves the application unwrapped, so its path is today's"
        ),
        p99_note="informative: ratio is p99 off / p99 on",
    )
    return rps_and_p99(contest, (on.name, off.name, sampled.name), rows)
