"""Functions the event-buffer tests run in worker processes (importable there)."""

from __future__ import annotations

from tasker import ExecutionContext


def stream_until_cancelled(context: ExecutionContext, size: int) -> int:
    """Send ``size``-byte events until asked to stop; return how many were sent."""
    sent = 0
    while not context.is_cancelled():
        context.send_event("frame", b"\x01" * size)
        sent += 1
    return sent


def stream(context: ExecutionContext, count: int, size: int) -> int:
    """Send ``count`` numbered events of about ``size`` bytes."""
    for i in range(count):
        context.send_event("frame", (i, b"\x02" * size))
    return count


def coalesced_frames(context: ExecutionContext, count: int) -> str:
    """A row, ``count`` coalescing frames, another row, then one more frame."""
    context.send_event("row", 0)
    for i in range(count):
        context.send_event("frame", i, coalesce=True)
    context.send_event("row", 1)
    context.send_event("frame", count, coalesce=True)
    return "sent"


def quick(context: ExecutionContext, value: int) -> int:
    """Return at once."""
    return value


def stream_from_threads(context: ExecutionContext, threads: int, count: int, size: int) -> int:
    """``threads`` threads each send ``count`` events ``(thread, number, bytes)``."""
    import threading

    def send(index: int) -> None:
        for number in range(count):
            context.send_event("frame", (index, number, b"\x03" * size))

    workers = [threading.Thread(target=send, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * count
