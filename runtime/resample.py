"""Resampling irregular sensor timestamps onto the spec's regular grid, as a stream.

Device streams are messy: jittered clocks, duplicated or reordered packets, NaNs, dropouts.
`StreamResampler` cleans and linearly interpolates them onto a grid `t0 + k / rate`. Each grid
value depends only on its two bracketing input samples, so the batch path (`resample`, the same
class fed once) and any chunking of the same input give bit-identical frames. A gap longer than
`max_gap_s` starts a new segment (a new grid origin); callers reset their windows there, so no
window ever spans a gap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from har_runtime.labels import UNLABELLED


@dataclass(frozen=True)
class Segment:
    """Regular frames of one gap-free stretch; `new` marks the first output after a gap/start."""

    times: np.ndarray
    frames: np.ndarray
    labels: Optional[np.ndarray]
    new: bool


@dataclass
class ResampleCounters:
    """What the resampler rejected, cumulatively."""

    accepted: int = 0
    #: NaN/inf values, or timestamps too large for the grid arithmetic (see `_finite`).
    nonfinite: int = 0
    #: Duplicates and small steps back (at most max_gap_s behind the newest accepted sample).
    out_of_order: int = 0
    #: Forward gaps longer than max_gap_s, and clock resets (larger steps back).
    gaps: int = 0


@dataclass
class StreamResampler:
    """Clean and resample one device's stream onto a regular grid (see module docstring)."""

    rate_hz: float
    max_gap_s: float
    counters: ResampleCounters = field(default_factory=ResampleCounters)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.max_gap_s <= 0:
            raise ValueError("rate_hz and max_gap_s must be > 0")
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next sample starts a new segment."""
        self._last_t: Optional[float] = None
        self._last_x: Optional[np.ndarray] = None
        self._last_label = UNLABELLED
        self._t0 = 0.0
        self._k = 0

    def push(self, times, frames, labels=None) -> List[Segment]:
        """Add samples (times (n,), frames (n, c), optional labels (n,)); return new segments."""
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        x = np.asarray(frames, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != t.shape[0]:
            raise ValueError(f"frames must be (n, channels) matching times; got {x.shape}, {t.shape}")
        lab = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        t, x, lab = self._finite(t, x, lab)
        out: List[Segment] = []
        while t.size:
            # A step back of more than max_gap_s is a clock reset (reboot, NTP step), not
            # reordering: it starts a new segment instead of stalling until the clock catches up.
            start = self._last_t if self._last_t is not None else -np.inf
            running = np.maximum.accumulate(np.concatenate([[start], t]))[:-1]
            jumps = np.flatnonzero(t < running - self.max_gap_s)
            cut = int(jumps[0]) if jumps.size else t.size
            out.extend(self._push_ordered(t[:cut], x[:cut], _sl(lab, 0, cut), running[:cut]))
            if cut == t.size:
                break
            self.counters.gaps += 1
            self.reset()
            t, x, lab = t[cut:], x[cut:], _sl(lab, cut, None)
        return [s for s in out if s.times.size or s.new]

    def _push_ordered(self, t, x, lab, running) -> List[Segment]:
        ordered = t > running
        self.counters.out_of_order += int(np.count_nonzero(~ordered))
        self.counters.accepted += int(np.count_nonzero(ordered))
        t, x, lab = t[ordered], x[ordered], (None if lab is None else lab[ordered])
        if t.size == 0:
            return []
        prev = np.concatenate([[self._last_t if self._last_t is not None else np.nan], t[:-1]])
        breaks = np.flatnonzero(~(t - prev <= self.max_gap_s))
        self.counters.gaps += int(np.count_nonzero(~np.isnan(prev[breaks])))
        out: List[Segment] = []
        bounds = list(breaks) + [t.size]
        if bounds[0] != 0:
            out.extend(self._continue(t[:bounds[0]], x[:bounds[0]], _sl(lab, 0, bounds[0]), False))
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._start(t[a], x[a], None if lab is None else lab[a])
            out.extend(self._continue(t[a + 1:b], x[a + 1:b], _sl(lab, a + 1, b), True))
        return out

    def _finite(self, t, x, lab):
        # Beyond this magnitude consecutive grid times (1/rate apart) are fewer than 1024 float64
        # steps apart, so the grid arithmetic breaks down; such timestamps are rejected like NaN.
        limit = 2.0 ** 52 / (self.rate_hz * 1024)
        keep = np.isfinite(t) & (np.abs(t) < limit) & np.isfinite(x).all(axis=1)
        self.counters.nonfinite += int(np.count_nonzero(~keep))
        return t[keep], x[keep], (None if lab is None else lab[keep])

    def _start(self, t0: float, x0: np.ndarray, label) -> None:
        self._t0, self._k = float(t0), 0
        self._last_t, self._last_x = float(t0), x0
        self._last_label = UNLABELLED if label is None else int(label)

    def _continue(self, t, x, lab, new) -> List[Segment]:
        xp = np.concatenate([[self._last_t], t])
        fp = np.concatenate([self._last_x[None, :], x])
        k_end = int(np.floor((xp[-1] - self._t0) * self.rate_hz)) + 1
        # floor() on a product can land one off; settle it with the exact grid formula.
        while k_end > self._k and self._t0 + (k_end - 1) / self.rate_hz > xp[-1]:
            k_end -= 1
        while self._t0 + k_end / self.rate_hz <= xp[-1]:
            k_end += 1
        grid = self._t0 + np.arange(self._k, max(k_end, self._k)) / self.rate_hz
        values = np.empty((grid.size, fp.shape[1]))
        for c in range(fp.shape[1]):
            values[:, c] = np.interp(grid, xp, fp[:, c])
        labels = None
        if lab is not None:
            lp = np.concatenate([[self._last_label], lab])
            labels = lp[np.searchsorted(xp, grid, side="right") - 1]
            self._last_label = int(lp[-1])
        self._k = max(k_end, self._k)
        self._last_t, self._last_x = float(xp[-1]), fp[-1]
        return [Segment(grid, values, labels, new)]


def _sl(arr, a, b):
    return None if arr is None else arr[a:b]


def resample(times, frames, rate_hz: float, max_gap_s: float, labels=None) -> List[Segment]:
    """Batch path: resample a whole recording (the streaming code, fed once)."""
    return StreamResampler(rate_hz, max_gap_s).push(times, frames, labels)
