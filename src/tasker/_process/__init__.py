"""The worker-process pool behind ``TaskManager.run_process``.

``ProcessPool`` is the parent side (``_pool``); ``_worker`` is the worker's
main loop; ``_channel`` frames messages on each worker's socket;
``_pickling`` handles serialization, out-of-band buffers and error
transport; ``_flags`` holds the shared-memory cancel flags; ``_logging``
forwards worker log records.
"""

from __future__ import annotations

from ._pool import ProcessPool, default_start_method

__all__ = ["ProcessPool", "default_start_method"]
