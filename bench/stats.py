"""Repeated measurements, their summary, and targets expressed as ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

import attrs


@attrs.frozen(kw_only=True)
class Stat:
    """The summary of repeated runs of one measurement: median, min and max."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("a Stat needs at least one value")
        return cls(values=tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


@attrs.frozen(kw_only=True)
class Target:
    """``ratio >= value`` (``higher`` is better) or ``hexmarket <= value`` (an absolute bound).

    ``kind="ratio"`` compares hexmarket / ceiling; ``kind="absolute"`` compares the
    hexmarket median itself (used where no ceiling exists, e.g. memory per order).
    """

    op: Literal[">=", "<="]
    value: float
    kind: Literal["ratio", "absolute"] = "ratio"

    def met(self, observed: float) -> bool:
        return observed >= self.value if self.op == ">=" else observed <= self.value

    def describe(self) -> str:
        return f"{self.op} {self.value:g}"


def ratio(hexmarket: float, ceiling: float, *, higher_is_better: bool = True) -> float:
    """hexmarket relative to its ceiling, oriented so that 1.0 means "as fast as the ceiling"."""
    if higher_is_better:
        return hexmarket / ceiling if ceiling else float("nan")
    return ceiling / hexmarket if hexmarket else float("nan")
