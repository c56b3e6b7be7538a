"""Windowing: regularly sampled frames in, model-ready windows out.

There is one implementation. The batch path (`make_windows`) is the streaming `Windower` fed
everything at once, so any chunking of the same samples yields the same windows, bit for bit.
That holds because every output value is computed from the raw samples of its own window (plus
the filter history) by element-wise operations only, at the moment the window completes; nothing
depends on where chunk boundaries fell.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from har_runtime.contract.labels import UNLABELLED
from har_runtime.contract.spec import ACC_CHANNELS, PreprocessSpec


@dataclass(frozen=True)
class WindowBatch:
    """Windows completed by one push.

    `windows` is float32 (n, window, model channels); `end_index` is the index, counted from
    the last reset, of each window's final sample; `labels` holds model class indices with -1
    for windows the spec's labelling rule rejects (only when the windower tracks labels).
    """

    windows: np.ndarray
    end_index: np.ndarray
    labels: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.end_index.shape[0])


def transform_windows(raw: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Apply the spec's filters to raw windows (n, history + window, channels) -> float32.

    The gravity estimate is a causal moving average over `gravity_taps` samples, summed tap by
    tap in a fixed order so the result never depends on batch size or memory layout.
    """
    h, w = spec.history, spec.window
    body = raw[:, h:h + w, :]
    if spec.acc_mode == "total":
        return np.array(body, dtype=np.float32, order="C")  # a copy, even of float32 frames
    acc_cols = [i for i, c in enumerate(spec.channels) if c in ACC_CHANNELS]
    gravity = raw[:, h:h + w, acc_cols].copy()
    for lag in range(1, spec.gravity_taps):
        gravity += raw[:, h - lag:h - lag + w, acc_cols]
    gravity *= 1.0 / spec.gravity_taps
    out = body.copy()
    out[:, :, acc_cols] -= gravity
    if spec.acc_mode == "body_gravity":
        out = np.concatenate([out, gravity], axis=2)
    return np.ascontiguousarray(out, dtype=np.float32)


def window_labels(label_windows: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Class index per window by the spec's rule (majority label covering enough), else -1.

    `label_windows` holds each window's labelled span (its last `spec.labelled` samples).
    """
    ids = np.asarray(spec.label_ids)
    counts = (label_windows[:, :, None] == ids[None, None, :]).sum(axis=1)
    best = counts.argmax(axis=1)
    fraction = counts[np.arange(len(best)), best] / float(label_windows.shape[1])
    return np.where(fraction >= spec.min_label_fraction - 1e-9, best, -1).astype(np.int64)


class Windower:
    """Stateful windower for one stream of frames at the spec's rate and in its units.

    Frames are rows of `spec.channels`. Before the first frame of a stream (or after `reset`)
    the filter history is filled with copies of that first frame, so the start of a recording
    is handled identically on the device and in training.
    """

    def __init__(self, spec: PreprocessSpec, with_labels: bool = False):
        self.spec = spec
        self.with_labels = with_labels
        self._keep = spec.window + spec.history
        # Frames are appended to a buffer with room for a few hops, which is compacted (its
        # last `keep` rows moved to the front) only when full: a push copies its own frames
        # once, instead of concatenating the whole history every time.
        self._capacity = self._keep + 2 * spec.hop
        # In "total" mode a window is its frames cast to float32, so the buffer holds them cast
        # already: the same values (each frame is rounded once either way) in half the memory,
        # which counts at thousands of devices.
        self._dtype = np.float32 if spec.acc_mode == "total" else np.float64
        self._span = _span(self._keep)
        labels = np.empty(0, dtype=np.int64) if with_labels else None
        self._none = WindowBatch(np.empty((0,) + spec.input_shape, np.float32),
                                 np.empty(0, np.int64), labels)
        self.reset()

    def reset(self) -> None:
        """Forget buffered samples, e.g. after a gap in the stream."""
        self._buf: Optional[np.ndarray] = None
        self._lbuf: Optional[np.ndarray] = None
        self._end = 0  # rows of _buf in use; the last one holds the newest frame
        self.count = 0
        self._next_end = self.spec.window - 1  # frame index where the next window ends

    @property
    def buffered(self) -> int:
        """Samples received since the last window completed (or reset) that no window holds yet."""
        if self.count < self.spec.window:
            return self.count
        return (self.count - self.spec.window) % self.spec.hop

    def push(self, frames: np.ndarray, labels: Optional[np.ndarray] = None) -> WindowBatch:
        """Add frames (n, channels); return the windows they complete."""
        spec = self.spec
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2 or frames.shape[1] != len(spec.channels):
            raise ValueError(f"frames must be (n, {len(spec.channels)}), got {frames.shape}")
        if self.with_labels:
            if labels is None or len(labels) != len(frames):
                raise ValueError("labels must accompany every frame")
            labels = np.asarray(labels, dtype=np.int64)
        return self.push_frames(frames, labels)

    def push_frames(self, frames, labels: Optional[np.ndarray] = None) -> WindowBatch:
        """`push` for frames already in its form (float64 (n, channels), or a list of n rows of
        Python floats; int64 labels when tracked), unchecked: for callers that have just built
        them."""
        windows, first_end = self.push_windows(frames, labels)
        if windows is None:
            return self._none
        n, hop = windows.shape[0], self.spec.hop
        batch_labels = None
        if self.with_labels:
            # The newest frame (index count - 1) is buffer row _end - 1.
            stop = self._end + first_end - self.count + 1
            span = self.spec.labelled
            batch_labels = window_labels(
                _rows(self._lbuf, stop, n, hop, span, self._span[:span]), self.spec)
        ends = np.arange(first_end, first_end + hop * n, hop, dtype=np.int64)
        return WindowBatch(windows, ends, batch_labels)

    def push_windows(self, frames, labels: Optional[np.ndarray] = None, copy: bool = True
                     ) -> Tuple[Optional[np.ndarray], int]:
        """`push_frames` without the WindowBatch, for the stream's hot path: (the windows it
        completes, or None; the frame index of the first one's last frame, counted from the
        reset). The others end every `hop` frames after the first.
        `copy=False` lets a single window in "total" mode be a view of the buffer (the same
        float32 values), valid only until the next push: for callers that use it at once."""
        n = len(frames)
        if n == 0:
            return None, 0
        if self._buf is None:
            self._open(np.asarray(frames[0], dtype=np.float64))
        if self._end + n > self._buf.shape[0]:
            self._make_room(n)
        lo, hi = self._end, self._end + n
        self._buf[lo:hi] = frames
        if self.with_labels:
            self._lbuf[lo:hi] = labels
        self._end = hi
        count = self.count
        self.count = count + n
        # Window ends are the frame indices (from the reset) window - 1 + i * hop; those before
        # count + n complete now, from the next one due on.
        first_end = self._next_end
        if count + n <= first_end:
            return None, 0
        hop = self.spec.hop
        windows = (count + n - 1 - first_end) // hop + 1
        self._next_end = first_end + hop * windows
        # The window ending at frame e ends at buffer row lo + e - count.
        stop = lo + first_end - count + 1
        if not copy and windows == 1 and self._dtype is np.float32:
            # A window in total mode is its frames as float32, which the buffer holds already.
            return self._buf[None, stop - self.spec.window:stop], first_end
        return (transform_windows(_rows(self._buf, stop, windows, hop, self._keep, self._span),
                                  self.spec), first_end)

    def _open(self, first: np.ndarray) -> None:
        """Start the buffers: `keep` rows of history, all copies of the first frame."""
        self._buf = np.empty((self._capacity, first.shape[0]), self._dtype)
        self._buf[:self._keep] = first
        if self.with_labels:
            self._lbuf = np.empty(self._capacity, dtype=np.int64)
            self._lbuf[:self._keep] = UNLABELLED
        self._end = self._keep

    def _make_room(self, n: int) -> None:
        """Make `n` free rows after the used ones, keeping the newest `keep` rows."""
        keep, size = self._keep, max(self._capacity, self._keep + n)
        self._buf = _compact(self._buf, self._end, keep, size)
        if self.with_labels:
            self._lbuf = _compact(self._lbuf, self._end, keep, size)
        self._end = keep


@functools.lru_cache(maxsize=8)
def _span(length: int) -> np.ndarray:
    """0..length-1, read-only and shared: every device's windower indexes with the same one."""
    span = np.arange(length)
    span.setflags(write=False)
    return span


def _compact(buf: np.ndarray, end: int, keep: int, size: int) -> np.ndarray:
    """`buf` (or a new buffer of `size` rows) with rows [end - keep, end) moved to the front."""
    out = buf if buf.shape[0] == size else np.empty((size,) + buf.shape[1:], buf.dtype)
    out[:keep] = buf[end - keep:end]  # numpy copies safely when the two overlap
    return out


def _rows(buf: np.ndarray, stop: int, count: int, step: int, length: int,
          span: np.ndarray) -> np.ndarray:
    """`buf[s - length:s]` for s = stop, stop + step, ... stacked as (count, length, ...)
    (a view of `buf` for a single window, a copy otherwise)."""
    if count == 1:  # the streaming case: a slice, no index arrays
        return buf[None, stop - length:stop]
    starts = np.arange(stop - length, stop - length + step * count, step)
    return buf[starts[:, None] + span[None, :]]


def make_windows(frames: np.ndarray, spec: PreprocessSpec,
                 labels: Optional[np.ndarray] = None) -> WindowBatch:
    """Batch path: all windows of one contiguous recording (the streaming code, fed once)."""
    windower = Windower(spec, with_labels=labels is not None)
    return windower.push(frames, labels)
