"""``python -m bench [--smoke] [--only KEY ...]``: start the servers, measure, report."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from bench import report
from bench.context import FULL, SMOKE, Bench, NotAvailable
from bench.procs import REPO_ROOT
from bench.report import Figure
from bench.wrk import ensure_installed

#: (key, servers it needs, module:function returning figures) in the order they are run.
SUITES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("order-get", ("postgres", "redis", "nats"), "bench.fig_http:order_get"),
    ("goods-list", ("postgres", "redis", "nats"), "bench.fig_http:goods_list"),
    ("server-choice", ("postgres", "redis", "nats"), "bench.fig_http:server_choice"),
    ("tracing", ("postgres", "redis", "nats"), "bench.fig_tracing:tracing_cost"),
    ("good-create", ("postgres", "redis", "nats"), "bench.fig_create:good_create"),
    ("good-writes", ("postgres", "redis", "nats"), "bench.fig_create:good_writes"),
    ("reprioritize-100k", ("postgres", "redis", "nats"), "bench.fig_create:reprioritize_cost"),
    ("ingest-kafka", ("postgres", "kafka"), "bench.fig_ingest:ingest_kafka"),
    ("ingest-nats", ("postgres", "nats"), "bench.fig_ingest:ingest_nats"),
    ("consumer-startup", ("postgres", "nats"), "bench.fig_startup:consumer_startup"),
    ("audit", ("postgres", "nats"), "bench.fig_audit:audit"),
    ("memory", ("postgres", "redis", "nats"), "bench.fig_http:memory"),
)


def _load(target: str) -> Callable[[Bench], list[Figure]]:
    import importlib

    module, _, name = target.partition(":")
    fn: Callable[[Bench], list[Figure]] = getattr(importlib.import_module(module), name)
    return fn


def _placeholder(key: str, note: str, *, error: bool) -> Figure:
    return Figure(key=key, title=key, unit="", note=note, error=error)


def run_suite(bench: Bench, key: str, servers: Sequence[str], target: str) -> list[Figure]:
    began = time.monotonic()
    print(f"== {key}", flush=True)
    try:
        bench.stack.ensure(*servers)  # type: ignore[arg-type]
        figures = _load(target)(bench)
    except NotAvailable as exc:
        figures = [_placeholder(key, f"not measured: {exc}", error=False)]
    except Exception as exc:
        traceback.print_exc()
        figures = [_placeholder(key, f"not measured: failed: {exc!r}"[:300], error=True)]
    print(f"   ({time.monotonic() - began:.0f}s)", flush=True)
    return figures


def write_docs(figures: Sequence[Figure], bench: Bench, out: Path, *, elapsed_s: float) -> Path:
    """``benchmarks.md`` (from the template) and ``benchmarks.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report.chart(figures, out / "benchmarks.png")
    machine = "\n".join(f"| {k} | {v} |" for k, v in report.machine(bench.versions))
    notes = "\n".join(f"- **{f.title}**: {f.note}" for f in figures if f.note) or "- none"
    template = (Path(__file__).parent / "benchmarks_template.md").read_text()
    text = template.format(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mode="smoke (tiny sizes, not figures)" if bench.smoke else "full",
        elapsed=f"{elapsed_s / 60:.1f}",
        table=report.markdown_table(figures),
        notes=notes,
        machine=machine,
    )
    path = out / "benchmarks.md"
    path.write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run, no targets")
    parser.add_argument(
        "--only", nargs="*", choices=[s[0] for s in SUITES], help="run these figures only"
    )
    parser.add_argument("--out", type=Path, help="where benchmarks.md/.png go (default docs/)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    from entrypoints.devstack import DevStack

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so every server and child is stopped on the way out.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    ensure_installed()
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="hexmarket-bench-"))
    out = args.out or (workdir / "docs" if args.smoke else REPO_ROOT / "docs")
    stack = DevStack(workdir / "servers")
    bench = Bench(
        stack=stack, sizes=SMOKE if args.smoke else FULL, workdir=workdir, smoke=args.smoke
    )
    figures: list[Figure] = []
    try:
        for key, servers, target in SUITES:
            if args.only and key not in args.only:
                continue
            figures += run_suite(bench, key, servers, target)
        if args.smoke:
            figures = [attrs.evolve(f, target=None) for f in figures]
        print()
        print(report.text_table(figures))
        path = write_docs(figures, bench, out, elapsed_s=time.monotonic() - began)
        print(f"\nwrote {path} and {path.with_suffix('.png')} ({time.monotonic() - began:.0f}s)")
    finally:
        with contextlib.suppress(Exception):
            stack.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}")
    failed = [f for f in figures if f.error]
    if failed:
        print(f"{len(failed)} figure(s) failed to run", file=sys.stderr)
        return 1
    return 0
