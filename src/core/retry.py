"""The one retry policy and the one stop-aware wait of every worker loop (orders consumer,
outbox relay, log writer).

Transient failures (a server down or moving) are retried after ``Backoff.delay(attempt)``;
waits end at once when the worker is asked to stop, and a call that is still running when
stop is asked gets a short grace before it is cancelled, so a stop is prompt even while a
server is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

#: Told of every transient failure about to be retried: the operation that failed (``fetch``,
#: ``store``, ``publish``...) and the error (its class is the cause). Metrics count them.
RetryHook = Callable[[str, BaseException], None]


def no_retry_hook(operation: str, error: BaseException) -> None:
    """The default ``RetryHook``: nobody is told."""


#: How long a call in flight may go on after stop was asked before it is cancelled.
STOP_GRACE = 2.0


@attrs.frozen(kw_only=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt ``n`` (from 0) waits a uniform
    random time in ``[0, min(maximum, initial * factor**n)]``. Jitter spreads the retries of
    several processes so they do not hammer a recovering server in step."""

    initial: float = 0.05
    maximum: float = 5.0
    factor: float = 2.0
    rng: random.Random = attrs.field(factory=random.Random, eq=False)

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt + 1``."""
        ceiling = min(self.maximum, self.initial * self.factor ** min(attempt, 60))
        return self.rng.uniform(0, ceiling)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Return after ``seconds`` or as soon as ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(seconds, 0.0))


async def first_of(stop: asyncio.Event, waiter: Awaitable[None]) -> None:
    """Return when ``waiter`` completes or ``stop`` is set; the other is cancelled."""
    stopper = asyncio.ensure_future(stop.wait())
    other = asyncio.ensure_future(waiter)
    try:
        done, _ = await asyncio.wait({stopper, other}, return_when=asyncio.FIRST_COMPLETED)
        if other in done:
            other.result()  # surface its exception
    finally:
        await _cancel(stopper, other)


class Stopped(Exception):
    """``until_stopped`` gave up on a call because the worker is stopping."""


async def until_stopped(stop: asyncio.Event, call: Awaitable[T], grace: float = STOP_GRACE) -> T:
    """``await call``; once ``stop`` is set, the call has ``grace`` seconds more to finish,
    then it is cancelled and ``Stopped`` raised (its effects are then whatever a cancelled
    call leaves: for the workers, nothing acknowledged)."""
    task = asyncio.ensure_future(call)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            raise Stopped
        return task.result()
    finally:
        await _cancel(stopper, task)


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
