"""Reusing a task function's by-value pickle while nothing it captures has changed.

A function from the main script, a lambda or a nested function travels by
value: cloudpickle writes its code, the globals its code reads, its closure
cells, defaults and annotations, which costs the submitting (often the main)
thread some 80 µs a task where a function importable by name costs a few.
An application submits the same function again and again, so its pickle is
kept and reused, but only while it is exactly what cloudpickle would write
now: the cache entry records the identity of everything captured, and only
functions whose captured values are immutable or travel by name (modules,
numbers, strings, importable functions and classes) are cached at all. A
function that captures a list, another by-value function or a class of the
main script is pickled afresh each time, as before. The worker unpickles each
task's copy anew, so every task starts from the state at its submission.
"""

from __future__ import annotations

import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ByValueFunction", "cached_by_value", "travels_by_value"]

_MISSING = object()
_loads = pickle.loads
#: Values that are the same whenever they are the same object, and pickle as such.
_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes})
#: ... and values that always travel by name.
_BY_NAME = frozenset({types.ModuleType, types.BuiltinFunctionType})


class ByValueFunction:
    """A function's by-value pickle, placed in a task's stream instead of the function."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[bytes]]:
        return (_loads, (self.data,))


def travels_by_value(fn: object) -> bool:
    """True for a plain function pickle cannot send by name (``__main__``, lambda, nested)."""
    if type(fn) is not types.FunctionType:
        return False
    return fn.__module__ == "__main__" or "<" in fn.__qualname__  # <lambda>, <locals>


class _Entry:
    __slots__ = ("captured", "code", "data", "defaults", "kwdefaults")

    def __init__(self, fn: types.FunctionType, data: bytes, captured: list[tuple[Any, Any]]):
        self.code = fn.__code__
        self.defaults = fn.__defaults__
        self.kwdefaults = fn.__kwdefaults__
        self.captured = captured  # (how to read it again, the object read)
        self.data = data


_lock = threading.Lock()  # guards _entries (submits may come from any thread)
_entries: weakref.WeakKeyDictionary[types.FunctionType, _Entry] = weakref.WeakKeyDictionary()


def cached_by_value(
    fn: types.FunctionType, pickle_by_value: Callable[[object], bytes]
) -> ByValueFunction | None:
    """``fn``'s by-value pickle, from the cache if still exact; None if ``fn`` is not cacheable.

    ``pickle_by_value`` makes the pickle on a miss (cloudpickle).
    """
    with _lock:
        entry = _entries.get(fn)
    if entry is not None and _unchanged(fn, entry):
        return ByValueFunction(entry.data)
    captured = _captured(fn)
    if captured is None:
        return None
    data = pickle_by_value(fn)
    with _lock:
        _entries[fn] = _Entry(fn, data, captured)
    return ByValueFunction(data)


def _unchanged(fn: types.FunctionType, entry: _Entry) -> bool:
    if (
        fn.__code__ is not entry.code
        or fn.__defaults__ is not entry.defaults
        or fn.__kwdefaults__ is not entry.kwdefaults
        or fn.__dict__
    ):
        return False
    return all(_read(fn, where) is value for where, value in entry.captured)


def _read(fn: types.FunctionType, where: Any) -> Any:
    kind, key = where
    if kind == "global":
        return fn.__globals__.get(key, _MISSING)
    if kind == "cell":
        try:
            return fn.__closure__[key].cell_contents  # type: ignore[index]
        except ValueError:  # empty cell
            return _MISSING
    if kind == "kwdefault":
        return (fn.__kwdefaults__ or {}).get(key, _MISSING)
    if kind == "annotation":
        return fn.__annotations__.get(key, _MISSING)
    return _MISSING


def _captured(fn: types.FunctionType) -> list[tuple[Any, Any]] | None:
    """What the by-value pickle of ``fn`` depends on; None if any of it may change unseen."""
    if fn.__dict__:
        return None
    places: list[tuple[Any, Any]] = [(("global", name), None) for name in _names(fn.__code__)]
    places += [(("cell", index), None) for index in range(len(fn.__closure__ or ()))]
    places += [(("kwdefault", name), None) for name in fn.__kwdefaults__ or {}]
    places += [(("annotation", name), None) for name in fn.__annotations__]
    captured = [(where, _read(fn, where)) for where, _ in places]
    values: list[Any] = [value for _, value in captured]
    values += list(fn.__defaults__ or ())
    if not all(value is _MISSING or _stable(value) for value in values):
        return None
    return captured


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _stable(value: Any) -> bool:
    """True if ``value`` pickles the same whenever it is the same object."""
    if type(value) in _ATOMS or type(value) in _BY_NAME:  # exact types: no subclass state
        return True
    if isinstance(value, type | types.FunctionType):
        # By name only: a class or function of the main script travels by value
        # and may change behind its identity.
        module = getattr(value, "__module__", None)
        if module is None or module == "__main__" or "<" in value.__qualname__:
            return False
        found: Any = sys.modules.get(module)
        for part in value.__qualname__.split("."):
            found = getattr(found, part, None)
        return found is value
    if isinstance(value, tuple | frozenset):
        return all(_stable(item) for item in value)
    return False
