"""The Dask demo's task: one fractal tile. GTK-free, since Dask workers import it."""

from __future__ import annotations

import os

from .._context import ExecutionContext
from ._work import FRACTAL_VIEWS, _palette

__all__ = ["render_tile"]


def render_tile(
    context: ExecutionContext,
    left: int,
    top: int,
    width: int,
    height: int,
    image: tuple[int, int],
    view: int = 1,
    max_iter: int = 200,
) -> tuple[int, int, int, int, bytes, int] | None:
    """Render the ``width`` x ``height`` tile at (``left``, ``top``) of an ``image``-sized view.

    Reports progress per row; returns ``(left, top, width, height, rgb, pid)``,
    or ``None`` when cancelled.
    """
    full_width, full_height = image
    cx, cy, span = FRACTAL_VIEWS[view % len(FRACTAL_VIEWS)]
    scale = span / full_width
    x0 = cx - span / 2
    y0 = cy - scale * full_height / 2
    palette = _palette()
    context.set_total(height)
    context.set_message(f"tile at {left},{top} on worker pid {os.getpid()}")
    rgb = bytearray(width * height * 3)
    for row in range(height):
        if context.is_cancelled():
            return None
        ci = y0 + (top + row) * scale
        base = row * width * 3
        for column in range(width):
            c = complex(x0 + (left + column) * scale, ci)
            z = 0j
            n = 0
            while n < max_iter:
                z = z * z + c
                if z.real * z.real + z.imag * z.imag > 4.0:
                    break
                n += 1
            if n < max_iter:
                k = (n * 7) % 256 * 3
                rgb[base + column * 3 : base + column * 3 + 3] = palette[k : k + 3]
        context.set_progress(row + 1)
    return left, top, width, height, bytes(rgb), os.getpid()
