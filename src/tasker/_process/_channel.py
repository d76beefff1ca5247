"""Message framing over a worker's stream socket.

A frame is a fixed 8-byte header (kind, aux byte, segment count, tag), one
little-endian 64-bit length per segment, then the segments. A segment is a
pickle stream, a UTF-8 string or an out-of-band buffer; ``send_frame`` hands
them all to one ``sendmsg`` call, so nothing is joined or copied in user
space. ``FrameReader`` receives into one preallocated buffer and hands out
views of it for small segments; a large segment is received straight into a
``bytearray`` of its own (``recv_into``), which the unpickler then uses as the
object's memory. The tag is the low 32 bits of the task id, so messages that
arrive late for a finished task are recognised and dropped. The aux byte of
a TASK frame says which of the worker's cancel flag bytes the task uses; that
of an EVENT frame is 1 for a coalescing event. Event credit (see ``_flow.py``)
uses two small frames: BLOCKED (worker -> parent: the credit the worker waits
for, one 64-bit count) and GRANT (parent -> worker: what the parent has
delivered of that task's events so far, one 64-bit count).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

__all__ = [
    "BLOCKED",
    "DONE_ERROR",
    "DONE_OK",
    "EVENT",
    "GRANT",
    "INIT_FAILED",
    "LOG",
    "PAUSED",
    "PROGRESS",
    "READY",
    "SKIPPED",
    "STOP",
    "TASK",
    "FrameReader",
    "send_frame",
    "send_frames",
]

# Parent -> worker.
TASK = 1
STOP = 2
GRANT = 3  # event credit returned: the task's delivered event bytes so far
# Worker -> parent.
READY = 10
INIT_FAILED = 11
PROGRESS = 12
EVENT = 13
DONE_OK = 14
DONE_ERROR = 15
LOG = 16
SKIPPED = 17  # a prefetched task was cancelled before it started: not run
PAUSED = 18  # the task reached a checkpoint with a pause requested, and waits
BLOCKED = 19  # a task waits for event credit: the delivered byte count it needs

#: Packs the single count of a GRANT or BLOCKED frame, and a TASK frame's event window.
COUNT = struct.Struct("<Q")

_HEADER = struct.Struct("<BBHI")
HEADER_SIZE = _HEADER.size
_LENGTH = struct.Struct("<Q")

#: Segments up to this size are received into the shared reading buffer.
INLINE_LIMIT = 64 * 1024
#: The reading buffer; it must hold a frame's header, lengths and inline segments.
_BUFFER_SIZE = 256 * 1024
#: Frames with more segments than this are refused (the pickler keeps far fewer).
MAX_SEGMENTS = 1024

_prefixes: dict[int, struct.Struct] = {}


def _prefix(count: int) -> struct.Struct:
    packer = _prefixes.get(count)
    if packer is None:
        packer = _prefixes[count] = struct.Struct(f"<BBHI{count}Q")
    return packer


def send_frame(sock: socket.socket, kind: int, tag: int, segments: list[Any], aux: int = 0) -> None:
    """Send one frame; ``segments`` are bytes-like objects. Blocks until all is sent.

    Callers serialise sends to one socket with a lock of their own.
    """
    lengths = [memoryview(s).nbytes if not isinstance(s, bytes) else len(s) for s in segments]
    head = _prefix(len(segments)).pack(kind, aux, len(segments), tag, *lengths)
    total = len(head) + sum(lengths)
    sent = sock.sendmsg([head, *segments])
    if sent != total:
        _send_rest(sock, [head, *segments], sent)


def send_frames(sock: socket.socket, frames: list[tuple[int, int, list[Any], int]]) -> None:
    """Send several ``(kind, tag, segments, aux)`` frames, in one ``sendmsg`` when they fit."""
    parts: list[Any] = []
    total = 0
    for kind, tag, segments, aux in frames:
        lengths = [memoryview(s).nbytes if not isinstance(s, bytes) else len(s) for s in segments]
        head = _prefix(len(segments)).pack(kind, aux, len(segments), tag, *lengths)
        parts.append(head)
        parts.extend(segments)
        total += len(head) + sum(lengths)
    if len(parts) > _MAX_PARTS:
        for kind, tag, segments, aux in frames:
            send_frame(sock, kind, tag, segments, aux)
        return
    sent = sock.sendmsg(parts)
    if sent != total:
        _send_rest(sock, parts, sent)


#: sendmsg takes at most IOV_MAX (1024 on Linux) buffers.
_MAX_PARTS = 1024


def _send_rest(sock: socket.socket, parts: list[Any], sent: int) -> None:
    # A stream socket may take part of a large message; go on from where it stopped.
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        while views and sent >= views[0].nbytes:
            sent -= views[0].nbytes
            views.pop(0)
        if not views:
            return
        if sent:
            views[0] = views[0][sent:]
        sent = sock.sendmsg(views[:1024])


class FrameReader:
    """Reassembles frames from a stream socket.

    ``feed()`` makes exactly one ``recv_into`` call (so after a selector said
    the socket is readable it never blocks), then appends every frame it
    completed to ``frames`` as ``(kind, tag, aux, segments)``. The first two
    segments of a frame, when small, are memoryviews of the reading buffer
    and stay valid only until the next ``feed()``: consume ``frames`` before
    feeding again. Other segments are ``bytearray`` objects of their own.
    """

    __slots__ = (
        "_aux",
        "_buf",
        "_count",
        "_end",
        "_kind",
        "_lengths",
        "_owned",
        "_owned_pos",
        "_segments",
        "_sock",
        "_start",
        "_tag",
        "_view",
        "frames",
    )

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray(_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0  # first unparsed byte
        self._end = 0  # end of received data
        self._kind = -1  # -1: waiting for a header
        self._tag = 0
        self._aux = 0
        self._count = 0  # segments in the current frame
        self._lengths: tuple[int, ...] | None = None  # None: not read yet
        # Segments so far: an int is an inline segment's offset in the buffer.
        self._segments: list[int | bytearray] = []
        self._owned: bytearray | None = None  # a large segment being received
        self._owned_pos = 0
        self.frames: list[tuple[int, int, int, list[Any]]] = []

    def feed(self) -> bool:
        """Receive once and parse; False at end of stream. May raise ``OSError``."""
        owned = self._owned
        if owned is not None:
            pos = self._owned_pos
            count = self._sock.recv_into(memoryview(owned)[pos:], len(owned) - pos)
            if count == 0:
                return False
            pos += count
            if pos < len(owned):
                self._owned_pos = pos
                return True
            self._owned = None
            self._segments.append(owned)
            self._parse()
            return True
        if self._start == self._end and self._kind == -1:
            self._start = self._end = 0  # nothing pending: rewind for free
        elif self._end == _BUFFER_SIZE:
            self._compact()
        count = self._sock.recv_into(self._view[self._end :])
        if count == 0:
            return False
        self._end += count
        self._parse()
        return True

    def _compact(self) -> None:
        # The buffer is full: keep only what the current frame still needs,
        # its inline segments parsed so far (kept as offsets until the frame
        # is complete, so they can move) and the unparsed bytes, at the front.
        # That is at most two inline segments plus one incomplete item, far
        # less than the buffer, so there is room to receive again.
        view = self._view
        kept: list[bytes] = []
        segments: list[int | bytearray] = []
        offset = 0
        lengths = self._lengths or ()
        for index, segment in enumerate(self._segments):
            if isinstance(segment, int):
                size = lengths[index]
                kept.append(bytes(view[segment : segment + size]))
                segments.append(offset)
                offset += size
            else:
                segments.append(segment)
        kept.append(bytes(view[self._start : self._end]))
        data = b"".join(kept)
        self._buf[: len(data)] = data
        self._segments = segments
        self._start = offset
        self._end = len(data)

    def _parse(self) -> None:
        view = self._view
        while True:
            if self._kind == -1:
                if self._end - self._start < HEADER_SIZE:
                    return
                kind, aux, count, tag = _HEADER.unpack_from(view, self._start)
                if count > MAX_SEGMENTS:
                    raise OSError(f"corrupt frame header: {count} segments")
                self._start += HEADER_SIZE
                self._kind, self._aux, self._count, self._tag = kind, aux, count, tag
                self._lengths = None if count else ()
                self._segments = []
            lengths = self._lengths
            if lengths is None:
                need = 8 * self._count
                if self._end - self._start < need:
                    return
                lengths = self._lengths = struct.unpack_from(f"<{self._count}Q", view, self._start)
                self._start += need
            segments = self._segments
            while len(segments) < self._count:
                index = len(segments)
                size = lengths[index]
                if index < 2 and size <= INLINE_LIMIT:
                    if self._end - self._start < size:
                        return
                    segments.append(self._start)
                    self._start += size
                    continue
                owned = bytearray(size)
                have = min(size, self._end - self._start)
                if have:
                    owned[:have] = view[self._start : self._start + have]
                    self._start += have
                if have < size:
                    self._owned, self._owned_pos = owned, have
                    return
                segments.append(owned)
            self.frames.append(
                (
                    self._kind,
                    self._tag,
                    self._aux,
                    [
                        view[s : s + lengths[i]] if isinstance(s, int) else s
                        for i, s in enumerate(segments)
                    ],
                )
            )
            self._kind = -1
            if self._start == self._end:
                return
