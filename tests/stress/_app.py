"""A small application the lifetime tests run as a child process and then end in various ways.

``python -m tests.stress._app MODE`` starts two busy process tasks (one of
which has a child process of its own), a thread task and a coroutine task,
prints ``worker PID`` / ``grandchild PID`` lines and then ``ready``, and then
according to MODE: ``wait`` (until killed), ``return`` (normal interpreter
exit without ``shutdown()``), ``raise`` (an uncaught exception), ``exit``
(``os._exit``, no clean-up at all) or ``sigterm`` (killed by SIGTERM's default
action). ``kill-early`` prints ``submitted`` right after starting the tasks,
before any worker is ready, and waits to be killed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from tasker import TaskManager, ThreadDispatcher

from . import _work


def main(mode: str) -> None:
    manager = TaskManager(ThreadDispatcher(), max_workers=2, cancel_grace=0.5)
    lock = threading.Lock()
    reported: list[str] = []
    ready = threading.Event()

    def on_event(task: object, name: str, data: object) -> None:
        with lock:
            if name == "busy":
                reported.append(f"worker {data}")
            elif name == "grandchild":
                reported.append(f"grandchild {data}")
            else:
                return
            print(reported[-1], flush=True)
            if len(reported) == 3:
                ready.set()

    manager.run_process(_work.busy, 120.0, when_event=on_event)
    manager.run_process(_work.busy_with_child, 120.0, when_event=on_event)
    manager.run_process(_work.busy, 120.0)  # queued behind the two busy workers
    manager.run_thread(_work.chatty, "thread")
    manager.add_coroutine(_work.async_chatty, "coroutine")
    if mode == "kill-early":
        print("submitted", flush=True)
        threading.Event().wait()
    if not ready.wait(60):
        print("workers did not report", flush=True)
        sys.exit(3)
    print("ready", flush=True)
    if mode == "wait":
        threading.Event().wait()
    elif mode == "raise":
        raise RuntimeError("the application crashed")
    elif mode == "exit":
        os._exit(0)
    elif mode == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait()
    # mode "return": fall off the end; only the atexit hook can clean up.


if __name__ == "__main__":
    main(sys.argv[1])
