"""The worker-process pool behind ``TaskManager.run_process``.

``ProcessPool`` is the parent side (``_pool``); ``_worker`` is the worker's
main loop; ``_channel`` frames messages on each worker's socket;
``_pickling`` handles serialization, out-of-band buffers and error
transport, by value where a worker cannot import by name (``_fncache`` reuses
a function's by-value pickle while it is exact); ``_launch`` starts
workers without importing the application's main script; ``_flags`` holds
the shared-memory cancel flags; ``_logging`` forwards worker log records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._pool import ProcessPool, default_start_method

__all__ = ["ProcessPool", "default_start_method"]


def __getattr__(name: str) -> Any:
    # Lazy: a worker imports this package for ``_worker`` and never needs the
    # parent side, whose imports (selectors, the multiprocessing context...)
    # would only slow its start.
    if name in __all__:
        from . import _pool

        return getattr(_pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
