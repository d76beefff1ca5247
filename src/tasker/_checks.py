"""Argument checks of the manager's front doors: options, run_* keywords, functions.

Each check raises ``TypeError`` or ``ValueError`` with a message that names the
argument, before anything changes, so bad input loses nothing.
"""

from __future__ import annotations

import contextlib
import math
import sys
import weakref
from collections.abc import Hashable, Mapping
from typing import Any

from ._flow import check_event_buffer
from ._group import Group
from ._scheduling import KeyPolicy

#: The manager options: the keyword arguments of TaskManager() and configure().
OPTIONS = frozenset(
    {
        "max_workers",
        "max_threads",
        "start_method",
        "timeout",
        "cancel_grace",
        "initializer",
        "initargs",
        "update_rate",
        "loop",
        "worker_nice",
        "process_backend",
        "event_buffer",
        "prestart_workers",
    }
)


def check_options(options: Mapping[str, Any]) -> None:
    """Check manager options (all, or those given to ``configure()``)."""
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"unknown manager option(s): {', '.join(sorted(unknown))}")
    for name in ("max_workers", "max_threads"):
        value = options.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive int or None, not {value!r}")
    method = options.get("start_method")
    if method is not None:
        import multiprocessing

        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start_method {method!r} is not available here; choose one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
    if "timeout" in options:
        check_timeout(options["timeout"])
    if "cancel_grace" in options:
        check_grace(options["cancel_grace"])
    rate = options.get("update_rate", 20.0)
    if not isinstance(rate, int | float) or not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"update_rate must be a positive number, not {rate!r}")
    init = options.get("initializer")
    if init is not None and not callable(init):
        raise TypeError(f"initializer must be callable, not {type(init).__name__}")
    initargs = options.get("initargs", ())
    if not isinstance(initargs, tuple | list):
        raise TypeError(f"initargs must be a tuple, not {type(initargs).__name__}")
    loop = options.get("loop")
    if loop is not None:
        asyncio = sys.modules.get("asyncio")  # no loop can exist unless asyncio is imported
        if asyncio is None or not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
    prestart = options.get("prestart_workers", False)
    if not isinstance(prestart, bool):
        raise TypeError(f"prestart_workers must be True or False, not {prestart!r}")
    nice = options.get("worker_nice", 0)
    if isinstance(nice, bool) or not isinstance(nice, int):
        raise TypeError(f"worker_nice must be an int, not {nice!r}")
    if options.get("process_backend") is not None:
        from ._backend import check_process_backend

        check_process_backend(options["process_backend"])
    if "event_buffer" in options:
        check_event_buffer(options["event_buffer"])


def check_timeout(timeout: Any) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not timeout > 0 or math.isnan(timeout):
        raise ValueError(f"timeout must be above 0 seconds, not {timeout!r}")


def check_weight(weight: Any) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise TypeError(f"weight must be a number, not {weight!r}")
    if not weight > 0 or not math.isfinite(weight):
        raise ValueError(f"weight must be a finite number above 0, not {weight!r}")


def check_grace(grace: Any, name: str = "cancel_grace") -> None:
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {grace!r}")
    if not grace >= 0 or not math.isfinite(grace):
        raise ValueError(f"{name} must be 0 or more seconds, not {grace!r}")


#: KeyPolicy by value; members hash like their values, so both look up.
_POLICIES: dict[str, KeyPolicy] = {p.value: p for p in KeyPolicy}


def check_scheduling(key: Hashable | None, policy: Any, debounce: Any, group: Any) -> KeyPolicy:
    """Check ``policy=``, ``debounce=`` and ``group=``; the policy as a ``KeyPolicy``."""
    if policy is None:
        key_policy = KeyPolicy.REPLACE
    else:
        # A dict, not KeyPolicy(policy): the enum call costs more than a whole submit.
        found = _POLICIES.get(policy) if isinstance(policy, str) else None
        if found is None:
            raise ValueError(
                f"policy must be one of {', '.join(repr(p.value) for p in KeyPolicy)}, "
                f"not {policy!r}"
            )
        key_policy = found
        if key is None and key_policy is not KeyPolicy.REPLACE:
            raise ValueError(f"policy={key_policy.value!r} needs a key= to apply to")
    if debounce is not None:
        if isinstance(debounce, bool) or not isinstance(debounce, int | float):
            raise TypeError(f"debounce must be a number of seconds or None, not {debounce!r}")
        if not debounce > 0 or not math.isfinite(debounce):
            raise ValueError(f"debounce must be above 0 seconds, not {debounce!r}")
        if key is None:
            raise ValueError("debounce= needs a key=: later calls with the same key supersede")
    if group is not None and not isinstance(group, Group):
        raise TypeError(f"group must be a tasker.Group, not {type(group).__name__}")
    return key_policy


def describe(obj: object) -> str:
    if callable(obj):
        return repr(getattr(obj, "__qualname__", type(obj).__name__))
    return f"a {type(obj).__name__} (not callable)"


def is_async_callable(obj: object) -> bool:
    """True for ``async def`` functions (partials too) and objects with an async ``__call__``."""
    import inspect  # costs milliseconds at import time; tasks are started much later

    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - async __call__ of a callable object
    return call is not None and inspect.iscoroutinefunction(call)


#: The function last found to be a plain (not async) callable. Starting many
#: tasks of one function then skips the inspect calls, which cost about as
#: much as the rest of a start. A weak reference: it keeps nothing alive.
_last_plain: weakref.ref[Any] | None = None


def check_plain_function(func: object, method: str) -> None:
    global _last_plain
    last = _last_plain
    if last is not None and func is not None and last() is func:  # a dead ref gives None
        return
    _check_plain_function_slow(func, method)
    with contextlib.suppress(TypeError):  # not weakly referenceable: checked every time
        _last_plain = weakref.ref(func)


def _check_plain_function_slow(func: object, method: str) -> None:
    if not callable(func):
        raise TypeError(f"{method}() needs a callable, not a {type(func).__name__}")
    if is_async_callable(func):
        raise TypeError(
            f"{method}() needs a plain function, but {describe(func)} is async; "
            "use add_coroutine() for async def functions"
        )
