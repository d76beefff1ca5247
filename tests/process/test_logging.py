"""Log records from workers reach the parent's logging, with the worker's pid."""

from __future__ import annotations

import logging

from . import _work as work
from ._util import finish


def _worker_records(caplog):
    return [r for r in caplog.records if r.name == "tasker.tests.worker"]


def test_worker_records_reach_parent_handlers(make_manager, caplog):
    caplog.set_level(logging.INFO)  # the root level workers copy when they start
    manager = make_manager(max_workers=1)
    pid = finish(manager.run_process(work.log_records)).result()
    records = _worker_records(caplog)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "info shown"),
        ("WARNING", "warning 7"),
        ("ERROR", "with traceback"),
    ]
    assert {r.process for r in records} == {pid}
    assert "KeyError: 'boom'" in records[-1].exc_text
    assert records[-1].funcName == "log_records"
    # The parent's formatter renders the forwarded traceback too.
    assert "KeyError: 'boom'" in logging.Formatter().format(records[-1])


def test_worker_log_level_follows_the_parents_root_level(make_manager, caplog):
    caplog.set_level(logging.DEBUG)
    manager = make_manager(max_workers=1)
    finish(manager.run_process(work.log_records))
    levels = [r.levelname for r in _worker_records(caplog)]
    assert levels == ["DEBUG", "INFO", "WARNING", "ERROR"]


def test_parent_filters_apply(make_manager, caplog):
    caplog.set_level(logging.INFO)
    logger = logging.getLogger("tasker.tests.worker")

    class DropWarnings(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.levelno != logging.WARNING

    drop = DropWarnings()
    logger.addFilter(drop)
    try:
        manager = make_manager(max_workers=1)
        finish(manager.run_process(work.log_records))
    finally:
        logger.removeFilter(drop)
    assert [r.levelname for r in _worker_records(caplog)] == ["INFO", "ERROR"]
