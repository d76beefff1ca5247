"""The demo's background work: plain functions and one coroutine, all without GTK.

Process tasks pickle their function by reference, so worker processes import
this module: it must stay importable without PyGObject, and cheap to import.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import time
import urllib.parse
from typing import Any

from .. import ExecutionContext

__all__ = [
    "FRACTAL_VIEWS",
    "crash_worker",
    "download",
    "export_video",
    "hash_data",
    "import_pipeline",
    "parse_settings",
    "render_fractal",
    "stubborn_render",
]

MIB = 1024 * 1024

#: Mandelbrot views the demo cycles through: (centre x, centre y, width of the view).
FRACTAL_VIEWS: tuple[tuple[float, float, float], ...] = (
    (-0.6, 0.0, 3.2),
    (-0.7453, 0.1127, 0.012),
    (-0.16, 1.0405, 0.045),
    (-1.25066, 0.02012, 0.0017),
)


# ----------------------------------------------------------------------------- I/O


async def download(context: ExecutionContext, url: str) -> dict[str, Any]:
    """Download ``url`` over plain HTTP/1.1 with asyncio streams, reporting progress.

    Returns the byte count, the SHA-256 and the time taken. Cancelling the task
    cancels the pending read; the connection is closed either way.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    started = time.monotonic()
    context.set_message(f"Connecting to {parts.netloc}…")
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        status = (await reader.readline()).decode("latin-1").split(maxsplit=2)
        if len(status) < 2 or status[1] != "200":
            raise ConnectionError(f"server answered {' '.join(status) or 'nothing'}")
        length = None
        while line := (await reader.readline()).strip():
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if not length:
            raise ConnectionError("the response has no Content-Length")
        context.set_total(length)
        digest = hashlib.sha256()
        received = 0
        while received < length:
            chunk = await reader.read(256 * 1024)
            if not chunk:
                raise ConnectionError(f"connection closed after {received} of {length} bytes")
            digest.update(chunk)
            received += len(chunk)
            context.set_progress(received)
            context.set_message(f"Downloaded {received / MIB:.1f} of {length / MIB:.1f} MiB")
        return {
            "bytes": received,
            "sha256": digest.hexdigest(),
            "seconds": time.monotonic() - started,
        }
    finally:
        writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await writer.wait_closed()


# -------------------------------------------------------------------------- thread


def hash_data(context: ExecutionContext, megabytes: int = 512) -> str:
    """Hash ``megabytes`` MiB of generated data with BLAKE2b in a worker thread.

    hashlib releases the GIL on large buffers, so the main loop keeps
    running at full speed. Stops early (returning "") when cancelled.
    """
    block = random.Random(42).randbytes(MIB)
    digest = hashlib.blake2b()
    context.set_total(megabytes)
    for done in range(megabytes):
        if context.is_cancelled():
            return ""
        digest.update(block)
        digest.update(done.to_bytes(4, "little"))
        context.set_progress(done + 1)
        context.set_message(f"Hashed {done + 1} of {megabytes} MiB")
    return digest.hexdigest()


# ------------------------------------------------------------------------ processes


def _palette() -> bytes:
    colours = bytearray()
    for i in range(256):
        t = i / 255.0
        # A smooth blue-orange ramp (Inigo Quilez's cosine palette, hand-tuned).
        r = 9 * (1 - t) * t * t * t
        g = 15 * (1 - t) * (1 - t) * t * t
        b = 8.5 * (1 - t) * (1 - t) * (1 - t) * t
        colours += bytes((min(255, int(r * 255)), min(255, int(g * 255)), min(255, int(b * 255))))
    return bytes(colours)


def render_fractal(
    context: ExecutionContext,
    width: int,
    height: int,
    view: int = 0,
    *,
    max_iter: int = 160,
    rows_per_event: int = 6,
    zoom: float = 1.0,
) -> dict[str, Any]:
    """Render a Mandelbrot view as RGB rows, streaming finished rows with ``send_event``.

    Each ``"rows"`` event carries ``(first_row, row_count, rgb_bytes)``. Pure
    Python on purpose: it is CPU-bound work that belongs in a process.
    Returns statistics, or stops early when cancelled.
    """
    cx, cy, span = FRACTAL_VIEWS[view % len(FRACTAL_VIEWS)]
    span /= zoom  # the zoom slider's scenes (issue 13) magnify the view
    scale = span / width
    x0 = cx - span / 2
    y0 = cy - scale * height / 2
    palette = _palette()
    context.set_total(height)
    context.set_message(f"Rendering view {view % len(FRACTAL_VIEWS) + 1} ({width}x{height})")
    started = time.monotonic()
    pending = bytearray()
    first = 0
    iterations = 0
    for y in range(height):
        if context.is_cancelled():
            return {"rows": y, "cancelled": True}
        ci = y0 + y * scale
        row = bytearray(width * 3)
        for x in range(width):
            c = complex(x0 + x * scale, ci)
            z = 0j
            n = 0
            while n < max_iter:
                z = z * z + c
                if z.real * z.real + z.imag * z.imag > 4.0:
                    break
                n += 1
            iterations += n
            if n < max_iter:
                k = (n * 7) % 256 * 3
                row[x * 3 : x * 3 + 3] = palette[k : k + 3]
        pending += row
        if (y + 1) % rows_per_event == 0 or y + 1 == height:
            context.send_event("rows", (first, y + 1 - first, bytes(pending)))
            pending = bytearray()
            first = y + 1
        context.set_progress(y + 1)
    return {
        "rows": height,
        "iterations": iterations,
        "seconds": time.monotonic() - started,
        "pid": os.getpid(),
    }


def import_pipeline(context: ExecutionContext, files: int = 12) -> dict[str, int]:
    """A three-stage job whose stages report through ``sub_context`` slices.

    read (0-30 %), parse (30-80 %, itself two nested stages) and optimise
    (80-100 %). The work per step is real but small (sorting and hashing),
    paced so the stages can be watched.
    """
    rng = random.Random(7)
    records = 0
    read = context.sub_context(0.0, 0.3, total=files)
    for i in range(files):
        if context.is_cancelled():
            return {"records": records}
        context.set_message(f"Stage 1/3 · reading file {i + 1} of {files}")
        records += len(sorted(rng.random() for _ in range(20_000)))
        time.sleep(0.05)  # stands in for disk latency
        read.set_progress(i + 1)
    parse = context.sub_context(0.3, 0.5)
    for name, stage in (
        ("tokenising", parse.sub_context(0.0, 0.4)),
        ("building", parse.sub_context(0.4, 0.6)),
    ):
        stage.set_total(files)
        for i in range(files):
            if context.is_cancelled():
                return {"records": records}
            context.set_message(f"Stage 2/3 · {name} file {i + 1} of {files}")
            hashlib.sha256(rng.randbytes(400_000)).digest()
            time.sleep(0.04)
            stage.set_progress(i + 1)
    optimise = context.sub_context(0.8, 0.2, total=10)
    for i in range(10):
        if context.is_cancelled():
            return {"records": records}
        context.set_message(f"Stage 3/3 · optimising pass {i + 1} of 10")
        sorted(rng.random() for _ in range(40_000))
        time.sleep(0.03)
        optimise.set_progress(i + 1)
    context.set_message("Imported")
    return {"records": records}


def parse_settings(context: ExecutionContext, text: str) -> dict[str, str]:
    """Parse ``key = value`` lines; raises ``ValueError`` naming the first bad line.

    The demo feeds it a broken file so the failure (with its original type,
    even across processes) shows in the task list.
    """
    settings: dict[str, str] = {}
    lines = text.splitlines()
    context.set_total(len(lines))
    for number, line in enumerate(lines, 1):
        context.set_message(f"Parsing line {number} of {len(lines)}")
        context.set_progress(number - 1)
        time.sleep(0.15)  # so the running state can be seen before it fails
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {number}: expected 'key = value', got {line.strip()!r}")
        settings[key.strip()] = value.strip()
    return settings


def crash_worker(context: ExecutionContext, exit_code: int = 3) -> None:
    """Simulate a worker dying (a segfault in a C extension, say): ``os._exit`` mid-task."""
    context.set_total(4)
    for step in range(3):
        context.set_message(f"Calling into a flaky native library ({step + 1}/3)")
        context.set_progress(step + 1)
        time.sleep(0.2)
    context.flush()
    os._exit(exit_code)


def stubborn_render(context: ExecutionContext, seconds: float = 60.0) -> str:
    """A computation that never checks ``is_cancelled()``.

    Cancelling it only sets the flag; after the task's ``cancel_grace`` the
    manager kills the worker and replaces it, and the task ends ``cancelled``.
    """
    started = time.monotonic()
    context.set_total(seconds)
    while (elapsed := time.monotonic() - started) < seconds:
        sum(i * i for i in range(20_000))  # busy, and deaf to cancellation
        context.set_progress(elapsed)
        context.set_message(f"Busy for {elapsed:.1f} s, not checking for cancellation")
    return "finished"


def export_video(
    context: ExecutionContext, frames: int = 120, frame_seconds: float = 0.06
) -> dict[str, Any]:
    """A long export that can be paused: ``context.stage()`` slices, a ``checkpoint()`` a frame.

    Preparing takes the first 10 % of the bar, encoding 85 % and writing the
    file the rest; each stage counts as done when its block ends. The pace is
    steady, so the row's "about N s left" holds.
    """
    started = time.monotonic()
    with context.stage(0.10, total=10) as prepare:
        for step in range(10):
            context.checkpoint()
            if context.is_cancelled():
                return {"frames": 0, "seconds": time.monotonic() - started}
            context.set_message(f"Preparing · scanning clip {step + 1} of 10")
            time.sleep(frame_seconds)
            prepare.set_progress(step + 1)
    with context.stage(0.85, total=frames) as encode:
        for frame in range(frames):
            context.checkpoint()  # a pause request stops here until resumed
            if context.is_cancelled():
                return {"frames": frame, "seconds": time.monotonic() - started}
            context.set_message(f"Encoding frame {frame + 1} of {frames}")
            hashlib.blake2b(bytes(200_000)).digest()  # stands in for the encoder
            time.sleep(frame_seconds)
            encode.set_progress(frame + 1)
    with context.stage(0.05):
        context.set_message("Writing the file")
        time.sleep(frame_seconds * 2)
    context.set_message("Exported")
    return {"frames": frames, "seconds": time.monotonic() - started, "pid": os.getpid()}
