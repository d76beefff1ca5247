"""Forwarding of worker log records to the parent's ``logging``.

In a worker, the root logger gets one ``ForwardingHandler`` (and loses any
handlers inherited through fork), at the level the parent's root logger had
when the worker started. Each record is flattened like
``logging.handlers.QueueHandler`` does (message formatted, arguments and
exception info replaced by text), pickled and sent on the worker's channel.
The parent rebuilds it and passes it to ``logging.getLogger(name).handle()``,
so the application's own handlers and filters see it, with ``process`` set
to the worker's pid.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from typing import Any

__all__ = ["ForwardingHandler", "handle_forwarded", "install"]

_PLAIN = (str, int, float, bool, type(None))


class ForwardingHandler(logging.Handler):
    """Sends every record it handles to the parent through ``send(pickled_record)``."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        super().__init__(logging.NOTSET)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        """Flatten, pickle and send ``record``; errors go to ``handleError`` like any handler."""
        try:
            self._send(_flatten(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _flatten(record: logging.LogRecord) -> bytes:
    state = dict(record.__dict__)
    state["msg"] = record.getMessage()
    state["args"] = None
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        state["exc_text"] = record.exc_text
    state["exc_info"] = None
    try:
        return pickle.dumps(state, protocol=5)
    except Exception:
        # Unpicklable ``extra=`` values travel as their repr.
        safe = {k: v if isinstance(v, _PLAIN) else repr(v) for k, v in state.items()}
        return pickle.dumps(safe, protocol=5)


def install(send: Callable[[bytes], None], level: int) -> ForwardingHandler:
    """Make the worker's root logger forward records at ``level`` and above to the parent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)  # inherited from the parent under fork: would duplicate output
    handler = ForwardingHandler(send)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def handle_forwarded(data: Any, pid: int | None) -> None:
    """Rebuild a forwarded record in the parent and hand it to its logger."""
    state = pickle.loads(data)
    record = logging.makeLogRecord(state)
    if pid is not None:
        record.process = pid
    logging.getLogger(record.name).handle(record)
