"""What the process holds: RSS, descriptors, threads, children, /dev/shm entries."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size in KiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def child_pids(pid: int | None = None) -> set[int]:
    """Direct children of ``pid`` (default: this process), from /proc/<pid>/task/*/children."""
    pid = os.getpid() if pid is None else pid
    children: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return children
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as file:
                children.update(int(p) for p in file.read().split())
        except FileNotFoundError:
            continue
    return children


def descendant_pids(pid: int | None = None) -> set[int]:
    """Every live descendant of ``pid`` (default: this process), children of children too."""
    found: set[int] = set()
    todo = [os.getpid() if pid is None else pid]
    while todo:
        for child in child_pids(todo.pop()):
            if child not in found and pid_alive(child):
                found.add(child)
                todo.append(child)
    return found


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def shm_entries() -> set[str]:
    """Names in /dev/shm (the POSIX shared-memory namespace)."""
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


#: /dev/shm is shared by every process on the machine; these are the names this
#: process tree can create there: multiprocessing semaphores and shared memory,
#: and anything named after tasker. Other programs' entries are not ours to count.
OUR_SHM_PREFIXES = ("sem.mp-", "mp-", "psm_", "wnsm_", "tasker")


def our_shm(entries: set[str] | frozenset[str]) -> set[str]:
    """The /dev/shm entries among ``entries`` that this process tree could have made."""
    return {name for name in entries if name.startswith(OUR_SHM_PREFIXES)}


def new_shm_of_ours(
    before: set[str] | frozenset[str], after: set[str] | frozenset[str]
) -> set[str]:
    """Entries that appeared between two looks and may be this process tree's leftovers.

    /dev/shm is machine-wide and other programs (another test run, a loky or
    Dask benchmark) create multiprocessing semaphores there too. An entry that
    still exists and is mapped or open in a process outside this tree belongs
    to that process; an entry nobody outside holds counts as ours.
    """
    candidates = {n for n in our_shm(set(after) - set(before)) if os.path.exists(f"/dev/shm/{n}")}
    if not candidates:
        return set()
    ours = descendant_pids() | {os.getpid()}
    held: set[str] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            with open(f"/proc/{entry}/maps") as maps:
                text = maps.read()
        except OSError:
            continue  # gone, or not ours to read
        held.update(name for name in candidates if f"/dev/shm/{name}" in text)
    return candidates - held


def tasker_threads() -> list[threading.Thread]:
    """Live threads tasker started (they are all named ``tasker-...``)."""
    return [t for t in threading.enumerate() if t.name.startswith("tasker-")]


@dataclass(frozen=True)
class Snapshot:
    """One look at the process's resources."""

    rss_kb: int
    fds: int
    threads: int
    children: frozenset[int]
    shm: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(
            rss_kb=rss_kb(),
            fds=open_fds(),
            threads=threading.active_count(),
            children=frozenset(child_pids()),
            shm=frozenset(shm_entries()),
        )

    def describe(self) -> str:
        return (
            f"RSS {self.rss_kb / 1024:.1f} MiB, {self.fds} fds, {self.threads} threads, "
            f"{len(self.children)} children, {len(self.shm)} /dev/shm entries "
            f"({len(our_shm(self.shm))} of the kinds we make)"
        )


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` (for state outside our control, such as /proc) until true or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
