"""Framing: frames survive any split into reads, large segments, partial sends."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker._process import _channel as ch


def _frame_bytes(kind: int, tag: int, segments: list[bytes]) -> bytes:
    a, b = socket.socketpair()
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := b.recv(1 << 20):
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        ch.send_frame(a, kind, tag, segments)
        a.shutdown(socket.SHUT_WR)
        reader.join(30)
        return b"".join(chunks)
    finally:
        a.close()
        b.close()


def _read_all(data: bytes, chunk: int) -> list[tuple[int, int, list[bytes]]]:
    """Write ``data`` in ``chunk``-sized writes from a thread; read frames until end of stream."""
    a, b = socket.socketpair()

    def write() -> None:
        for start in range(0, len(data), chunk):
            a.sendall(data[start : start + chunk])
        a.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=write)
    writer.start()
    reader = ch.FrameReader(b)
    got: list[tuple[int, int, list[bytes]]] = []
    try:
        while reader.feed():
            got += [(k, t, [bytes(s) for s in segs]) for k, t, _aux, segs in reader.frames]
            reader.frames.clear()
    finally:
        writer.join(30)
        a.close()
        b.close()
    return got


FRAMES = [
    (ch.TASK, 1, [b"hello"]),
    (ch.STOP, 0, []),
    (ch.EVENT, 2**32 - 1, [b"name", b"", os.urandom(100_000), os.urandom(70_000)]),
    (ch.DONE_OK, 7, [os.urandom(200_000), b"x" * 65_536, os.urandom(3)]),
    (ch.LOG, 3, [b"y" * 65_537]),
]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65_536, 10**7])
def test_frames_survive_any_split(chunk):
    # One byte per write is slow: use small frames for that case.
    frames = [*FRAMES[:2], (ch.PROGRESS, 5, [b"ab", b"cd", b"efg"])] if chunk == 1 else FRAMES
    data = b"".join(_frame_bytes(*frame) for frame in frames)
    assert _read_all(data, chunk) == frames


def test_partial_sends_of_a_large_frame():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payload = [os.urandom(3_000_000), os.urandom(10), memoryview(os.urandom(500_000))]
    received: list[tuple[int, int, list[bytes]]] = []

    def read() -> None:
        reader = ch.FrameReader(b)
        while not received:
            if not reader.feed():
                return
            received.extend((k, t, [bytes(s) for s in segs]) for k, t, _aux, segs in reader.frames)
            reader.frames.clear()

    thread = threading.Thread(target=read)
    thread.start()
    ch.send_frame(a, ch.DONE_OK, 9, payload)
    thread.join(30)
    a.close()
    b.close()
    assert received == [(ch.DONE_OK, 9, [bytes(p) for p in payload])]


def test_end_of_stream():
    a, b = socket.socketpair()
    reader = ch.FrameReader(b)
    a.close()
    assert reader.feed() is False
    b.close()


def test_small_segments_are_views_and_large_ones_owned():
    data = _frame_bytes(ch.DONE_OK, 1, [b"meta", b"p" * 100_000, b"q" * 10])
    frames = _read_all(data, len(data))
    assert frames == [(ch.DONE_OK, 1, [b"meta", b"p" * 100_000, b"q" * 10])]
    a, b = socket.socketpair()
    a.sendall(data)
    reader = ch.FrameReader(b)
    while not reader.frames:
        reader.feed()
    ((_kind, _tag, _aux, segments),) = reader.frames
    assert isinstance(segments[0], memoryview)
    assert isinstance(segments[1], bytearray)
    assert isinstance(segments[2], bytearray)  # out-of-band buffers are always owned
    a.close()
    b.close()


def test_aux_byte_travels():
    a, b = socket.socketpair()
    ch.send_frame(a, ch.TASK, 5, [b"x"], aux=1)
    ch.send_frame(a, ch.TASK, 6, [b"y"])
    reader = ch.FrameReader(b)
    while len(reader.frames) < 2:
        reader.feed()
    assert [(k, t, aux) for k, t, aux, _ in reader.frames] == [(ch.TASK, 5, 1), (ch.TASK, 6, 0)]
    a.close()
    b.close()


_sizes = st.one_of(
    st.integers(0, 100),
    st.integers(65_500, 65_600),
    st.integers(100_000, 300_000),
)
_frames = st.lists(
    st.tuples(
        st.integers(1, 20),
        st.integers(0, 2**32 - 1),
        st.lists(_sizes, max_size=4),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=_frames, chunk=st.sampled_from([97, 4096, 65_536, 200_000, 10**7]))
def test_random_frames_and_splits(frames, chunk):
    built = [
        (kind, tag, [bytes([i % 251]) * size for i, size in enumerate(sizes)])
        for kind, tag, sizes in frames
    ]
    data = b"".join(_frame_bytes(*frame) for frame in built)
    assert _read_all(data, chunk) == built
