"""The bounded pool of worker threads that runs thread tasks."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

__all__ = ["ThreadPool"]


class ThreadPool:
    """Runs callables on at most ``max_threads`` daemon threads, started as needed.

    Threads are daemons so a thread task that never returns cannot keep the
    interpreter alive; ``stop`` joins them with a timeout. Idle threads wait
    for work rather than exit, since GUI apps start tasks in bursts.
    """

    def __init__(self, max_threads: int) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        self._max = max_threads
        # Guards the queue, the thread list, the idle count and _stopping.
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Callable[[], object]] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._stopping = False

    def submit(self, job: Callable[[], object]) -> bool:
        """Queue ``job``; it runs on a pool thread. ``job`` must not raise.

        Returns False, dropping ``job``, once the pool is stopped.
        """
        with self._cond:
            if self._stopping:
                return False
            self._queue.append(job)
            if self._idle > len(self._queue) - 1 or len(self._threads) >= self._max:
                self._cond.notify()
                return True
            thread = threading.Thread(
                target=self._work, name=f"tasker-thread-{len(self._threads) + 1}", daemon=True
            )
            # Started under the lock, so stop() never sees (and joins) an unstarted thread.
            # The new thread needs the lock only once it looks for work.
            thread.start()
            self._threads.append(thread)
        return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if self._stopping:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                job = self._queue.popleft()
            job()

    def stop(self, timeout: float) -> list[threading.Thread]:
        """Let idle threads exit and join all of them; returns the ones still running."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            threads = list(self._threads)
            self._cond.notify_all()
        import time

        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]
