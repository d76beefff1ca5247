"""Task bodies for the contract tests (module level: worker processes import them)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def storm(context: Any, updates: int) -> int:
    """Report progress ``updates`` times as fast as possible, then a final message."""
    for n in range(updates):
        context.set_progress(n / updates)
        if n % 1000 == 0:
            context.set_message(f"step {n}")
    context.set_message("final")
    return updates


def events(context: Any, count: int) -> int:
    """Send ``count`` numbered events, then return."""
    for n in range(count):
        context.send_event("n", n)
    return count


async def async_events(context: Any, count: int) -> int:
    """``events`` as a coroutine, yielding to the loop now and then."""
    for n in range(count):
        context.send_event("n", n)
        if n % 50 == 0:
            await asyncio.sleep(0)
    return count


def outcome(context: Any, what: str) -> str:
    """Return, raise, or wait for cancellation, as ``what`` says."""
    if what == "fail":
        raise ValueError("asked to fail")
    if what == "wait":
        while not context.is_cancelled():
            time.sleep(0.001)  # polling the cancel flag, as cooperative tasks do
    return what


def stubborn(context: Any) -> None:
    """Ignore cancellation: only killing the worker stops this."""
    context.send_event("started", None)
    while True:
        time.sleep(0.01)


async def awaits_forever(context: Any) -> None:
    """Wait until asyncio cancellation stops it."""
    context.send_event("started", None)
    await asyncio.Event().wait()


def cooperative(context: Any) -> str:
    """Stop as soon as the task is cancelled."""
    context.send_event("started", None)
    while not context.is_cancelled():
        time.sleep(0.001)
    return "stopped"
