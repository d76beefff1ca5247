"""Process-wide facts every part of tasker may read, without importing any other part.

A worker process imports this module (the bootstrap sets the flags), and so
do the manager and ``tasker/__init__``: the worker never has to import the
manager to tell it where it runs.
"""

from __future__ import annotations

import sys

__all__ = ["importing_main_in_child", "in_worker_process"]

#: True in a tasker worker process (set by its bootstrap before the initializer
#: runs): the global ``task_mgr`` starts nothing there.
in_worker_process = False


def importing_main_in_child() -> bool:
    """True in a tasker worker, or while a ``multiprocessing`` child imports ``__main__``.

    tasker's workers never import the application's main script, but the
    application's own ``multiprocessing`` children do: a script that starts
    tasks (or workers) at module level must not start them again in each.
    """
    if in_worker_process:
        return True
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is None:
        return False
    current = mp_process.current_process()
    return bool(getattr(current, "_inheriting", False))
