"""``owner=`` for GObjects: a widget goes away on ``destroy``, any other GObject when finalized.

Registered with ``tasker.register_owner_type`` when ``tasker.gtk`` is
imported. It needs only GObject, so GTK 3 and GTK 4 widgets work alike (both
have the ``destroy`` signal) and importing it loads no GTK. A GObject's
Python wrapper may be collected and made again while the object lives, so
a GObject is never watched through a Python weak reference.
"""

from __future__ import annotations

from collections.abc import Callable

from gi.repository import GObject

from .._owners import register_owner_type

__all__ = ["watch_gobject"]


def watch_gobject(owner: GObject.Object, gone: Callable[[], None]) -> None:
    """Call ``gone()`` when a widget is destroyed, or another GObject is finalized."""
    # The handlers hold only ``gone``, never the object.
    if GObject.signal_lookup("destroy", type(owner)):  # type: ignore[no-untyped-call]
        owner.connect("destroy", lambda *_: gone())
    else:
        owner.weak_ref(lambda *_: gone())


register_owner_type(GObject.Object, watch_gobject)
