"""Windowing: regularly sampled frames in, model-ready windows out.

There is one implementation. The batch path (`make_windows`) is the streaming `Windower` fed
everything at once, so any chunking of the same samples yields the same windows, bit for bit.
That holds because every output value is computed from the raw samples of its own window (plus
the filter history) by element-wise operations only, at the moment the window completes; nothing
depends on where chunk boundaries fell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from har_runtime.labels import UNLABELLED
from har_runtime.spec import ACC_CHANNELS, PreprocessSpec


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
        return np.ascontiguousarray(body, dtype=np.float32)
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
    """Class index per window by the spec's rule (majority label covering enough), else -1."""
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
        self.reset()

    def reset(self) -> None:
        """Forget buffered samples, e.g. after a gap in the stream."""
        self._buf: Optional[np.ndarray] = None
        self._lbuf: Optional[np.ndarray] = None
        self.count = 0

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
        n = frames.shape[0]
        if n == 0:
            return self._empty()
        if self._buf is None:
            self._buf = np.repeat(frames[:1], self._keep, axis=0)
            self._lbuf = np.full(self._keep, UNLABELLED, dtype=np.int64)
        ext = np.concatenate([self._buf, frames])
        ends = self._window_ends(n)
        # Window ending at global index e occupies ext[keep + e - count - keep + 1 : ... + 1].
        starts = ends - self.count + 1
        idx = starts[:, None] + np.arange(self._keep)[None, :]
        batch_windows = transform_windows(ext[idx], spec)
        batch_labels = None
        if self.with_labels:
            lext = np.concatenate([self._lbuf, labels])
            batch_labels = window_labels(lext[idx[:, spec.history:]], spec)
            self._lbuf = lext[-self._keep:]
        self._buf = ext[-self._keep:]
        self.count += n
        return WindowBatch(batch_windows, ends.astype(np.int64), batch_labels)

    def _window_ends(self, n: int) -> np.ndarray:
        w, hop = self.spec.window, self.spec.hop
        first = max(self.count, w - 1)
        last = self.count + n - 1
        if last < first:
            return np.empty(0, dtype=np.int64)
        k0 = -(-(first - (w - 1)) // hop)
        k1 = (last - (w - 1)) // hop
        return (w - 1) + hop * np.arange(k0, k1 + 1, dtype=np.int64)

    def _empty(self) -> WindowBatch:
        shape = (0,) + self.spec.input_shape
        labels = np.empty(0, dtype=np.int64) if self.with_labels else None
        return WindowBatch(np.empty(shape, np.float32), np.empty(0, np.int64), labels)


def make_windows(frames: np.ndarray, spec: PreprocessSpec,
                 labels: Optional[np.ndarray] = None) -> WindowBatch:
    """Batch path: all windows of one contiguous recording (the streaming code, fed once)."""
    windower = Windower(spec, with_labels=labels is not None)
    return windower.push(frames, labels)
