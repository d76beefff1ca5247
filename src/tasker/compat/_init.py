"""The worker initializer shim of ``tasker.compat.rayforge``.

Kept apart from that module so worker processes, which import it to
unpickle the initializer, do not import asyncio and the manager for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["call_with_shared_state"]


def call_with_shared_state(
    initializer: Callable[..., object], shared_state: Any, *initargs: Any
) -> None:
    """Call ``initializer(shared_state, *initargs)``: Rayforge's initializer convention."""
    initializer(shared_state, *initargs)
