"""Serialization between the parent and its workers.

Everything travels as pickle protocol 5. Buffers of at least
``OOB_THRESHOLD`` bytes go *out of band*: the pickle stream only refers to
them, and the channel sends them straight from the object's memory and
receives each into its own ``bytearray``, so a 100 MB array is never copied
into or out of a pickle stream. NumPy arrays and ``PickleBuffer`` objects do
this by themselves; ``bytes``, ``bytearray`` and ``memoryview`` values do not
(the C pickler writes the first two in band and cannot pickle the third), so
``prepare`` wraps large ones at the top level and one container level deep
(a tuple, list or dict of up to ``_SCAN_LIMIT`` items) in boxes that reduce
to a ``PickleBuffer``. Deeper ones still travel correctly, in band.

What a worker can import by name travels by reference, with the standard
C pickler. What it cannot travels by value, with cloudpickle: functions,
classes and closures of the application's ``__main__`` (workers never import
the main script), lambdas and nested functions. ``dumps`` tries the standard
pickler first and takes cloudpickle only when that fails or the stream names
``__main__`` (the test Dask uses too: a byte search, nothing per object), so
library code and large data pay nothing extra. cloudpickle keeps protocol 5
and the same buffer callback: out-of-band buffers stay zero-copy either way.

Exceptions are checked in the worker: one that does not survive
``dumps``/``loads`` is replaced by a ``TaskError`` with its type name,
message and traceback text.
"""

from __future__ import annotations

import pickle
import traceback
import types
from collections.abc import Callable
from typing import Any

from .._errors import RemoteTraceback, SerializationError, TaskError
from ._fncache import cached_by_value, travels_by_value

__all__ = [
    "OOB_THRESHOLD",
    "by_value",
    "describe_type",
    "dump_call",
    "dump_exception",
    "dumps",
    "dumps_inband",
    "load_exception",
    "loads",
    "prepare",
]

#: Buffers at least this large travel out of band; smaller ones are cheaper in the stream.
OOB_THRESHOLD = 64 * 1024
#: At most this many out-of-band buffers per message (sendmsg's iovec limit is 1024).
MAX_OOB_BUFFERS = 512
#: Containers with more items than this are not scanned for large bytes values.
_SCAN_LIMIT = 64

Buffers = list[memoryview]


class _BytesBox:
    """Makes a large ``bytes`` value travel out of band; it arrives as ``bytes``."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (bytes, (pickle.PickleBuffer(self.data),))


class _ByteArrayBox:
    """Makes a large ``bytearray`` travel out of band; the received buffer *is* the value."""

    __slots__ = ("data",)

    def __init__(self, data: bytearray) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_as_bytearray, (pickle.PickleBuffer(self.data),))


class _MemoryViewBox:
    """Makes a ``memoryview`` picklable; it arrives as a view of the received buffer."""

    __slots__ = ("data",)

    def __init__(self, data: memoryview) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        view = self.data
        if view.c_contiguous and _castable(view):
            flat: Any = pickle.PickleBuffer(view)
            return (_as_memoryview, (flat, view.format, view.shape, view.readonly))
        # Strided or exotic formats: one copy, then a plain byte view.
        return (_as_memoryview, (view.tobytes(), "B", (view.nbytes,), view.readonly))


def _castable(view: memoryview) -> bool:
    try:
        memoryview(b"").cast(view.format)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return True


def _as_bytearray(buffer: Any) -> bytearray:
    return buffer if type(buffer) is bytearray else bytearray(buffer)


def _as_memoryview(buffer: Any, fmt: str, shape: tuple[int, ...], readonly: bool) -> memoryview:
    view = memoryview(buffer).cast("B")
    if fmt != "B" or len(shape) != 1:
        view = view.cast(fmt, shape)  # type: ignore[call-overload]
    return view.toreadonly() if readonly else view


def _box(value: Any) -> Any:
    kind = type(value)
    if kind is memoryview:
        return _MemoryViewBox(value)
    if kind is bytes and len(value) >= OOB_THRESHOLD:
        return _BytesBox(value)
    if kind is bytearray and len(value) >= OOB_THRESHOLD:
        return _ByteArrayBox(value)
    return value


_BOXED = (bytes, bytearray, memoryview)


def prepare(obj: Any) -> Any:
    """Wrap large bytes-like values (top level, or directly in a small container) in boxes.

    Costs a few type checks for ordinary values; returns ``obj`` itself when
    there is nothing to wrap.
    """
    kind = type(obj)
    if kind in _BOXED:
        return _box(obj)
    if (kind is tuple or kind is dict) and not obj:
        return obj  # the usual empty args or kwargs: nothing to scan
    if (kind is tuple or kind is list) and len(obj) <= _SCAN_LIMIT:
        if any(type(item) in _BOXED for item in obj):
            return kind(_box(item) for item in obj)
    elif (
        kind is dict
        and len(obj) <= _SCAN_LIMIT
        and any(type(value) in _BOXED for value in obj.values())
    ):
        return {key: _box(value) for key, value in obj.items()}
    return obj


def dumps(obj: Any) -> tuple[bytes, Buffers]:
    """Pickle ``obj``; return the stream and the out-of-band buffers (flat byte views)."""
    return _dumps_prepared(prepare(obj))


def _dumps_prepared(obj: Any, embedded: bytes = b"") -> tuple[bytes, Buffers]:
    """``dumps`` of an object ``prepare`` has seen already.

    ``embedded`` is a by-value pickle ``obj`` carries (see ``_fncache``): the
    ``__main__`` it names needs no by-value pass.
    """
    buffers: Buffers = []

    def keep(buffer: pickle.PickleBuffer) -> bool:
        # A true return keeps the buffer in the stream; false sends it out of band.
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: let pickle copy it in band
            return True
        if raw.nbytes < OOB_THRESHOLD or len(buffers) >= MAX_OOB_BUFFERS:
            return True
        buffers.append(raw)
        return False

    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=keep)
    except Exception:
        pass  # a lambda, a nested function...: by value below, or the real error from there
    else:
        if _MAIN not in data or (embedded and data.count(_MAIN) == embedded.count(_MAIN)):
            return data, buffers
    buffers.clear()
    return by_value().dumps(obj, protocol=5, buffer_callback=keep), buffers


def dumps_inband(obj: Any) -> bytes:
    """Pickle ``obj`` in one stream (no out-of-band buffers), by value where needed."""
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:
        pass
    else:
        if _MAIN not in data:
            return data
    pickled: bytes = by_value().dumps(obj, protocol=5)
    return pickled


#: A stream that names this module refers to the application's main script,
#: which a worker never imports (and which the parent's unpickler would take
#: from its own ``__main__`` anyway): such an object travels by value. Data
#: that merely contains these bytes takes the by-value path too, which is
#: slower but just as correct.
_MAIN = b"__main__"


def by_value() -> Any:
    """The cloudpickle module, imported when something first travels by value."""
    import cloudpickle  # type: ignore[import-untyped]

    return cloudpickle


def loads(data: Any, buffers: Any = ()) -> Any:
    """Unpickle what ``dumps`` produced; ``buffers`` are the received out-of-band buffers."""
    return pickle.loads(data, buffers=buffers)


def describe_type(obj: object) -> str:
    """The name of ``obj``'s type as error messages show it (module-qualified if not builtin)."""
    kind = type(obj)
    module = getattr(kind, "__module__", "builtins")
    name = getattr(kind, "__qualname__", kind.__name__)
    return name if module == "builtins" else f"{module}.{name}"


def dump_call(
    fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bytes, Buffers]:
    """Pickle a task's function and arguments in the submitting thread.

    Raises ``SerializationError`` naming the first piece that cannot be
    pickled (the function, ``argument N`` counting from 1 after the context,
    or ``keyword argument 'name'``) and its type.
    """
    try:
        # A function that travels by value goes as its cached pickle when
        # nothing it captures changed (see _fncache): no cloudpickle pass.
        portable: Any = fn
        embedded = b""
        if travels_by_value(fn):
            cached = cached_by_value(fn, _pickle_function)  # type: ignore[arg-type]
            if cached is not None:
                portable, embedded = cached, cached.data
        # The (fn, args, kwargs) tuple itself needs no scan: the function is no
        # bytes-like value, and args and kwargs are scanned here.
        return _dumps_prepared((portable, prepare(args), prepare(kwargs)), embedded)
    except Exception as error:
        raise _call_error(fn, args, kwargs, error) from error


def _pickle_function(fn: object) -> bytes:
    data: bytes = by_value().dumps(fn, protocol=5)
    return data


def _call_error(
    fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any], error: Exception
) -> SerializationError:
    pieces: list[tuple[str, object]] = [
        (f"function {getattr(fn, '__qualname__', '?')!r}", fn),
    ]
    pieces += [(f"argument {index}", arg) for index, arg in enumerate(args, 1)]
    pieces += [(f"keyword argument {name!r}", value) for name, value in kwargs.items()]
    for label, value in pieces:
        try:
            dumps(value)
        except Exception as piece_error:
            why = _why_callable_fails(value) if value is fn else None
            return SerializationError(
                f"{label} of type {describe_type(value)} cannot be pickled: "
                f"{why or _error_text(piece_error)}"
            )
    # Each piece pickles alone but not together (a shared unpicklable object
    # is impossible, so this is a pickler limit such as recursion depth).
    return SerializationError(f"the task's function and arguments cannot be pickled: {error}")


def _error_text(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _why_callable_fails(fn: object) -> str | None:
    """Name what a function that travels by value holds and cannot be pickled, if found.

    A function travels with its closure cells, default values and the
    globals its code uses (when it comes from ``__main__``); a bound method
    with its object. The usual culprit is a widget: "a closure over 'label',
    a gi.repository.Gtk.Label".
    """
    holder = getattr(fn, "__self__", None)
    if holder is not None and not isinstance(holder, types.ModuleType):
        problem = _piece_problem(holder)
        if problem is not None:
            return f"it is a method of {_a(holder)}, which cannot be pickled ({problem})"
    function = getattr(fn, "__func__", fn)
    if not isinstance(function, types.FunctionType):
        return None
    code = function.__code__
    suggestion = "; pass what the task needs as arguments instead"
    for name, cell in zip(code.co_freevars, function.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        problem = _piece_problem(value)
        if problem is not None:
            return (
                f"it is a closure over {name!r}, {_a(value)}, which cannot be pickled "
                f"({problem}){suggestion}"
            )
    defaults = [*(function.__defaults__ or ()), *(function.__kwdefaults__ or {}).values()]
    for value in defaults:
        problem = _piece_problem(value)
        if problem is not None:
            return f"a default value, {_a(value)}, cannot be pickled ({problem}){suggestion}"
    scope = function.__globals__
    for name in _global_names(code):
        if name not in scope:
            continue
        value = scope[name]
        if isinstance(value, types.ModuleType):
            continue  # modules travel by name
        problem = _piece_problem(value)
        if problem is not None:
            return (
                f"it uses the global {name!r}, {_a(value)}, which cannot be pickled "
                f"({problem}){suggestion}"
            )
    return None


def _global_names(code: types.CodeType) -> list[str]:
    """The global names ``code`` and the functions nested in it may read."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return names


def _piece_problem(value: object) -> str | None:
    try:
        dumps(value)
    except Exception as error:
        return _error_text(error)
    return None


def _a(value: object) -> str:
    name = describe_type(value)
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


ErrorMeta = tuple[str, str, str]


def dump_exception(error: BaseException) -> tuple[ErrorMeta, bytes]:
    """Serialize a worker-side exception: ``((type name, message, traceback), pickle)``.

    The pickle is empty when the exception does not survive a round trip
    through pickle; the parent then builds a ``TaskError`` from the metadata.
    """
    text = "".join(traceback.format_exception(error))
    try:
        message = str(error)
    except Exception:
        message = f"<unprintable {type(error).__name__}>"
    meta = (describe_type(error), message, text)
    try:
        data = dumps_inband(error)
        pickle.loads(data)
    except Exception:
        data = b""
    return meta, data


def load_exception(meta: ErrorMeta, data: Any) -> BaseException:
    """Rebuild a worker's exception in the parent, its traceback attached as ``__cause__``."""
    type_name, message, text = meta
    error: BaseException | None = None
    if len(data):
        try:
            loaded = pickle.loads(data)
        except Exception:
            loaded = None
        if isinstance(loaded, BaseException):
            error = loaded
    if error is None:
        error = TaskError(type_name, message, text)
    error.__cause__ = RemoteTraceback(text)
    return error
