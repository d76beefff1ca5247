"""Cancel flags in shared memory: a few bytes per worker slot, one per task it holds.

The parent writes a task's byte to ask the task to stop (or not to start); the
worker's ``ExecutionContext.is_cancelled()`` reads it, which costs an index
into a memoryview and no system call. The region is an anonymous memory file
(``memfd_create``) or, where that does not exist, an unlinked temporary file,
so nothing is left in ``/dev/shm`` or on disk whatever happens to the
processes.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

__all__ = ["CancelFlags", "FdArg", "attach_flags"]


class CancelFlags:
    """The parent's view of the flag region: ``flags[slot] = 1`` cancels a slot's task."""

    __slots__ = ("_map", "fd", "size", "view")

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.fd = _anonymous_file(self.size)
        self._map = mmap.mmap(self.fd, self.size)
        self.view = memoryview(self._map)

    def __setitem__(self, slot: int, value: int) -> None:
        self.view[slot] = value

    def __getitem__(self, slot: int) -> int:
        return self.view[slot]

    def close(self) -> None:
        """Unmap the region and close its descriptor (workers keep their own mappings)."""
        self.view.release()
        self._map.close()
        os.close(self.fd)


def _anonymous_file(size: int) -> int:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            fd: int = memfd_create("tasker-cancel-flags", os.MFD_CLOEXEC)
        except OSError:
            pass  # e.g. a seccomp sandbox that forbids it: use a file instead
        else:
            os.ftruncate(fd, size)
            return fd
    import tempfile  # rarely needed: not imported up front

    with tempfile.TemporaryFile() as file:
        # TemporaryFile is already unlinked on POSIX; keep a duplicate of its descriptor.
        fd = os.dup(file.fileno())
    os.ftruncate(fd, size)
    return fd


def attach_flags(fd: int, size: int) -> memoryview:
    """Map the flag region in a worker and close the descriptor (the mapping stays valid)."""
    region = mmap.mmap(fd, max(1, size))
    os.close(fd)
    return memoryview(region)


class FdArg:
    """A file descriptor passed to a worker as a ``Process`` argument.

    Under spawn and forkserver the descriptor is duplicated into the child by
    multiprocessing (``reduction.DupFd``) while the process object is pickled;
    under fork the child simply inherits it.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        from multiprocessing import reduction

        return (_rebuild_fd, (reduction.DupFd(self.fd),))

    def take(self) -> int:
        """Return the descriptor, to be owned (and closed) by the caller."""
        return self.fd


def _rebuild_fd(dup: Any) -> FdArg:
    return FdArg(dup.detach())
