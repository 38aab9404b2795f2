"""Waiting that a stop request interrupts at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


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
        for task in (stopper, other):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
