"""Rate and ETA of tasks, estimated on the main thread from coalesced progress updates.

Workers only store their latest progress (see ``ProgressReport``); the
manager's update tick hands each changed value, with the tick's time, to the
task's ``RateEstimator``. So estimating costs workers nothing, and the main
thread a few float operations per task per tick.

The clock is the task's *active* clock (``Task._active_clock``): time spent
paused does not count, so an ETA stands still while its task is paused.

**The rate.** A sliding window: the progress gained between the oldest and
the newest sample of the last ``WINDOW`` seconds, divided by the time between
them. Over a whole window the delay between a worker's ``set_progress`` and
the tick that sees it (at most one update interval plus the main loop's
lateness) hardly matters, which is what keeps the ETA of a steady task from
jumping: tqdm's per-update EMA (its issues 813 and 1161) reacts to each
delay. When updates are so sparse that the window holds fewer than
``MIN_WINDOW_SAMPLES`` samples, or spans under ``MIN_WINDOW_SPAN`` seconds, the rate is a
bias-corrected exponential moving average of the rates between consecutive
updates (what tqdm does; the correction keeps the first values from being
pulled towards 0).

**The bound** (tested in ``tests/test_progress.py``): take a task whose
progress grows steadily, and a tick that sees each value at most ``d``
seconds after the worker set it. The window spans at least ``MIN_SPAN``
seconds once a rate is reported, so the rate is off by at most
``d / MIN_SPAN`` of itself, and every ETA is within
``(d / MIN_SPAN) * left + d`` of the true time ``left``. With the default
update rate ``d`` is one update interval (0.05 s) plus the main loop's
lateness; for ``d <= 0.1`` s that is **at most 10 % + 0.1 s**, and so two
readings ``t`` seconds apart differ by ``t`` give or take twice that: the
ETA does not jump.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._context import ProgressReport
    from ._task import Task

__all__ = ["RateEstimator", "observe_progress", "overall_eta", "weighted_progress"]

#: Seconds of samples the sliding-window rate looks at.
WINDOW = 10.0
#: The window rate needs at least this many samples ...
MIN_WINDOW_SAMPLES = 3
#: ... spanning at least this many seconds; otherwise the EMA is used.
MIN_WINDOW_SPAN = 0.5
#: A rate (and so an ETA) is reported only after this many updates ...
MIN_UPDATES = 3
#: ... spread over at least this many seconds of active time.
MIN_SPAN = 1.0
#: Smoothing factor of the EMA fallback (the weight of the newest interval).
EMA_ALPHA = 0.3
#: Samples closer together than this are merged (keeps the window small
#: whatever the update rate: at most WINDOW / MIN_SPACING samples).
MIN_SPACING = 0.02


class RateEstimator:
    """The progress rate of one task from ``(active time, progress)`` samples.

    Main thread only (``update``); ``rate`` and ``eta`` may be read anywhere.
    """

    __slots__ = ("_count", "_ema", "_ema_steps", "_first_time", "_samples", "rate")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self.rate: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._samples.clear()
        self._count = 0
        self._first_time = 0.0
        self._ema = 0.0
        self._ema_steps = 0
        #: Fraction per second, or None until meaningful.
        self.rate = None

    def update(self, now: float, progress: float) -> None:
        """Add the progress seen at active time ``now`` and recompute the rate."""
        samples = self._samples
        if samples:
            last_time, last_progress = samples[-1]
            if progress < last_progress:
                # The task went back (a new pass, a retry): old samples say nothing now.
                self._reset()
            elif now - last_time < MIN_SPACING:
                return  # too close to the last sample to tell a rate apart (a flush)
            else:
                step = now - last_time
                self._ema = (
                    EMA_ALPHA * ((progress - last_progress) / step) + (1.0 - EMA_ALPHA) * self._ema
                )
                self._ema_steps += 1
        if not samples:
            self._first_time = now
        samples.append((now, progress))
        self._count += 1
        while len(samples) > 1 and samples[0][0] < now - WINDOW:
            samples.popleft()
        self._rate(now)

    def _rate(self, now: float) -> None:
        if self._count < MIN_UPDATES or now - self._first_time < MIN_SPAN:
            self.rate = None
            return
        samples = self._samples
        first_time, first_progress = samples[0]
        last_time, last_progress = samples[-1]
        span = last_time - first_time
        if len(samples) >= MIN_WINDOW_SAMPLES and span >= MIN_WINDOW_SPAN:
            rate = (last_progress - first_progress) / span
        elif self._ema_steps:
            rate = self._ema / (1.0 - (1.0 - EMA_ALPHA) ** self._ema_steps)
        else:
            rate = 0.0
        self.rate = rate if rate > 0.0 else None

    def eta(self, now: float) -> float | None:
        """Seconds left at active time ``now``, or None.

        Counts down from the last sample, so a UI refreshed between updates
        sees it move smoothly.
        """
        rate = self.rate
        samples = self._samples
        if rate is None or not samples:
            return None
        last_time, last_progress = samples[-1]
        return max(0.0, (1.0 - last_progress) / rate - max(0.0, now - last_time))


def observe_progress(reports: Iterable[ProgressReport], now: float) -> None:
    """The update tick saw these reports change at ``now``: feed their tasks' estimators.

    Main thread only. Also notes each task's first progress for its timings.
    """
    for report in reports:
        task = report.task
        if task is None or task._status.is_final:
            continue
        progress = report.progress
        if progress > 0.0 and task._first_progress is None:
            task._first_progress = now
        estimator = task._estimator
        if estimator is None:
            if progress <= 0.0:
                continue  # nothing to estimate from yet
            estimator = task._estimator = RateEstimator()
        estimator.update(task._active_clock(now), progress)


def weighted_progress(done_weight: float, tasks: Iterable[Task[Any]]) -> float:
    """Overall progress: the weighted mean of live tasks and those done since idle.

    ``done_weight`` is the summed weight of tasks finished since the manager
    was last idle; they count as complete, so the value does not jump back
    when a task ends. 1.0 when there is nothing.
    """
    total = done_weight
    weights = done_weight
    for task in tasks:
        weight = task.weight
        weights += weight
        total += weight * (1.0 if task._status.is_final else task._report.progress)
    if weights <= 0.0:
        return 1.0
    return min(1.0, total / weights)


def overall_eta(tasks: Iterable[Task[Any]]) -> float | None:
    """Seconds until every live task is done: the largest ETA, since they run side by side.

    None while any live task has no ETA yet (a pending one has none); 0.0 when
    there is no live task.
    """
    longest = 0.0
    for task in tasks:
        if task._status.is_final:
            continue
        eta = task.get_eta()
        if eta is None:
            return None
        longest = max(longest, eta)
    return longest
