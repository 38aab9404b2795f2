"""The chaos suite's figures: one row per run, printed at the end of the session and kept in
``.cache/chaos-figures.md`` (the table docs/operations.md quotes)."""

from __future__ import annotations

from pathlib import Path

import attrs

ROOT = Path(__file__).parents[2]
FILE = ROOT / ".cache" / "chaos-figures.md"

HEADER = (
    "| run | produced | stored | lost | duplicated | dead-lettered (distinct / repeats)"
    " | kills (+ refused starts) | outages | recovered after last fault |"
)


@attrs.frozen
class Row:
    run: str
    produced: str
    stored: int
    lost: int
    duplicated: int
    dead_lettered: str
    kills: int
    refused_starts: int
    outages: str
    recovered_s: float

    def markdown(self) -> str:
        return (
            f"| {self.run} | {self.produced} | {self.stored} | {self.lost} | {self.duplicated}"
            f" | {self.dead_lettered} | {self.kills} (+{self.refused_starts}) | {self.outages}"
            f" | {self.recovered_s:.1f} s |"
        )


ROWS: list[Row] = []


def record(row: Row) -> None:
    ROWS.append(row)


def table() -> str:
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|", *(r.markdown() for r in ROWS)]
    return "\n".join(lines)


def write() -> None:
    FILE.parent.mkdir(parents=True, exist_ok=True)
    FILE.write_text(table() + "\n")
