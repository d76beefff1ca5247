"""Benchmarks for tasker against the systems a GTK developer would otherwise use.

Run ``python -m benchmarks`` (full run, a few minutes) or ``python -m benchmarks --smoke``
(every metric with tiny sample counts, a few seconds).  See ``docs/benchmarks.md``.

This package must stay cheap to import: worker processes import ``benchmarks._work``.
"""
