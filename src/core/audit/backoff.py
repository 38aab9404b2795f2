"""Exponential backoff with full jitter, for loops that wait out an unavailable server."""

from __future__ import annotations

import random

import attrs


@attrs.define(kw_only=True)
class Backoff:
    """``next()`` is a random delay in ``[c/2, c]`` with ``c = min(maximum, initial *
    factor**attempt)``: the ceiling grows with each consecutive failure; ``reset()`` starts
    over. Jitter spreads the retries of several processes so they do not hammer a recovering
    server in step."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0
    rng: random.Random = attrs.field(factory=random.Random)
    attempt: int = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
