"""Helpers shared by the dispatchers."""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["logger", "run_logged"]

logger = logging.getLogger("tasker")


def run_logged(fn: Callable[[], object]) -> None:
    """Call ``fn()``; log and swallow what it raises, so one bad callback breaks nothing."""
    try:
        fn()
    except Exception:
        logger.exception("exception in a callback run by tasker")
