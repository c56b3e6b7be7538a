"""Resampling irregular sensor timestamps onto the spec's regular grid, as a stream.

Device streams are messy: jittered clocks, duplicated or reordered packets, NaNs, dropouts.
`StreamResampler` cleans and linearly interpolates them onto a grid `t0 + k / rate`. Each grid
value depends only on its two bracketing input samples, so the batch path (`resample`, the same
class fed once) and any chunking of the same input give bit-identical frames. A gap longer than
`max_gap_s` starts a new segment (a new grid origin); callers reset their windows there, so no
window ever spans a gap.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from har_runtime.contract.labels import UNLABELLED


class Segment(NamedTuple):
    """Regular frames of one gap-free stretch; `new` marks the first output after a gap/start.
    (A named tuple: one is made per push, and a tuple is the cheapest immutable record.)"""

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


#: Most samples a push can stage in the resampler's scratch buffers (which grow to the largest
#: push seen); larger pushes concatenate instead.
SCRATCH = 256
#: Grid offsets k / rate computed ahead, so a push only adds the origin to a slice of them.
GRID_BLOCK = 128
#: Pushes of at most this many samples (a device's share of a batch of interleaved lines) are
#: resampled in Python floats (`push_rows`): at this size each numpy call costs more than
#: all of the arithmetic.
SMALL = 8


def _compiled_interp():
    """np.interp's compiled core: the Python layer around it (complex-input checks) costs more
    than the interpolation itself at a hop's size, and it runs once per channel per push."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(name).interp
        except (ImportError, AttributeError):
            continue
    return np.interp


_interp = _compiled_interp()


def _lerp(g: float, x0: float, x1: float, a: List[float], b: List[float]) -> List[float]:
    """np.interp's arithmetic at `g` strictly between samples (x0, a) and (x1, b), per channel:
    the slope first, then one multiply and one add, each rounded (with finite samples and
    increasing times its NaN fallback cannot trigger)."""
    dx, d = x1 - x0, g - x0
    return [(bc - ac) / dx * d + ac for ac, bc in zip(a, b)]


def _scalar_matches_numpy() -> bool:
    """Whether `_lerp` gives np.interp's bits on this build. A compiler may fuse np.interp's
    multiply-add (one rounding instead of two); then small pushes take the numpy path too."""
    rng = np.random.default_rng(0)
    xp = np.cumsum(rng.uniform(1e-3, 1.0, 65))
    fp = rng.normal(0.0, 1e3, 65)
    g = rng.uniform(xp[0], xp[-1], 512)
    j = np.searchsorted(xp, g, side="right") - 1
    mine = [_lerp(v, xp[i], xp[i + 1], [fp[i]], [fp[i + 1]])[0] if xp[i] != v else fp[i]
            for v, i in zip(g.tolist(), j.tolist())]
    return np.array(mine).tobytes() == _interp(g, xp, fp).tobytes()


_SCALAR_EXACT = _scalar_matches_numpy()


@dataclass
class StreamResampler:
    """Clean and resample one device's stream onto a regular grid (see module docstring)."""

    rate_hz: float
    max_gap_s: float
    counters: ResampleCounters = field(default_factory=ResampleCounters)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.max_gap_s <= 0:
            raise ValueError("rate_hz and max_gap_s must be > 0")
        # Beyond this magnitude consecutive grid times (1/rate apart) are fewer than 1024 float64
        # steps apart, so the grid arithmetic breaks down; such timestamps are rejected like NaN.
        self._limit = 2.0 ** 52 / (self.rate_hz * 1024)
        # So steps between grid times (1/rate to within 1/1024, by the limit) are in (0, gap].
        self._grid_steps_ok = 2.0 / self.rate_hz <= self.max_gap_s
        self._grid_hint: Optional[Tuple[int, np.ndarray]] = None
        # Scratch for the interpolation abscissae/ordinates: slot 0 holds the newest accepted
        # sample, a push's samples follow it (channels as rows: np.interp reads them in place).
        self._tb = np.empty(1)
        self._fb = np.empty((0, 1))
        self._offsets, self._offsets_k = np.empty(0), 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next sample starts a new segment."""
        self._last_t: Optional[float] = None
        #: The newest accepted values as Python floats when the small path set them last (the
        #: numpy paths then write them to the scratch first, `_sync_scratch`), else None.
        self._newest: Optional[List[float]] = None
        self._last_label = UNLABELLED
        self._t0 = 0.0
        self._k = 0

    def push(self, times, frames, labels=None) -> List[Segment]:
        """Add samples (times (n,), frames (n, c), optional labels (n,)); return new segments."""
        t = np.asarray(times, dtype=np.float64)
        if t.ndim != 1:
            t = t.reshape(-1)
        x = np.asarray(frames, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != t.shape[0]:
            raise ValueError("frames must be (n, channels) matching times; "
                             f"got {x.shape}, {t.shape}")
        lab = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        return self.push_arrays(t, x, lab)

    def push_arrays(self, t: np.ndarray, x: np.ndarray, lab: Optional[np.ndarray] = None,
                    copy: bool = True) -> List[Segment]:
        """`push` for arrays already in its form (float64 times (n,), float64 frames (n, c),
        int64 labels (n,) or None), unchecked: for callers that have just built them.
        `copy=False` lets the frames of a chunk on the grid be `x` itself, for callers that
        copy them on at once (the stream's windower)."""
        if lab is None:
            small = self.push_rows(t, x)
            if small is not None:
                times, frames = small
                return [Segment(np.array(times), np.array(frames), None, False)] if times else []
        if self._newest is not None:
            self._sync_scratch()
        if self._is_clean(t, x):
            # Nothing to clean: exactly what the general path below would make of this chunk.
            self.counters.accepted += t.size
            if self._last_t is None:  # a clean start: the general path's first segment
                self._start(t[0], x[0], None if lab is None else lab[0])
                return [self._continue(t[1:], x[1:], _sl(lab, 1, None), True)]
            seg = self._continue(t, x, lab, False, copy)
            return [seg] if seg.times.size else []
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

    def _is_clean(self, t: np.ndarray, x: np.ndarray) -> bool:
        """Whether the chunk needs no cleaning (the common case): every value finite, every
        time in range and each step, from the newest accepted sample on, in (0, max_gap_s].
        When it does, the general path decides."""
        n = t.size
        if n == 0 or n > SCRATCH:
            return False
        first = t.item(0)  # Python floats: numpy scalars are slower at this arithmetic
        if not (-self._limit < first and t.item(-1) < self._limit):
            return False  # NaN fails the range test too
        if self._last_t is not None:
            if x.shape[1] != self._fb.shape[0] or not 0.0 < first - self._last_t <= self.max_gap_s:
                return False
        # A sum is finite only when every value is (an overflowing sum of finite values merely
        # sends the chunk down the general path).
        if not math.isfinite(np.add.reduce(x, axis=None)):
            return False
        if n > 1 and not (self._last_t is not None and self._on_grid(t)):
            steps = np.subtract(t[1:], t[:-1])
            # The ufuncs' reduce skips the Python layer of ndarray.min/max: this runs per push.
            if not (np.minimum.reduce(steps) > 0.0 and np.maximum.reduce(steps) <= self.max_gap_s):
                return False
        return True

    def _on_grid(self, t: np.ndarray) -> bool:
        """Whether `t` is exactly the next t.size grid times (a recording at the spec rate):
        then its steps are the grid's, increasing and within max_gap_s (see __post_init__), and
        `_continue` reuses the grid (`_grid_hint`). Called last in `_is_clean`, so a hint is
        only left for a chunk that takes the clean path."""
        # The next grid time in Python floats first (t0 + k / rate rounds the same way): a
        # chunk off the grid costs no array.
        if not self._grid_steps_ok or t.item(0) != self._t0 + self._k / self.rate_hz:
            return False
        grid = np.add(self._grid_offsets(self._k, self._k + t.size), self._t0)
        if grid.item(0) != t.item(0) or grid.tobytes() != t.tobytes():
            return False
        self._grid_hint = (self._k, grid)
        return True

    def push_rows(self, t: np.ndarray, x: np.ndarray
                  ) -> Optional[Tuple[List[float], List[List[float]]]]:
        """`push_arrays` (without labels) for a push of at most SMALL samples that continues
        the segment and needs no cleaning (see `_is_clean`): its new grid times and frames as
        Python lists, computed in Python floats, bit for bit what the numpy path gives (the
        grid as `_grid_offsets` + t0 rounds it, frames with np.interp's arithmetic, `_lerp`).
        None, with nothing changed, when the push is not such a one: then `push_arrays` it."""
        if not 0 < t.size <= SMALL or self._last_t is None or not _SCALAR_EXACT:
            return None
        times = t.tolist()
        last = times[-1]
        if x.shape[1] != self._fb.shape[0] or not last < self._limit:
            return None
        rows = x.tolist()
        prev, gap = self._last_t, self.max_gap_s
        for ti, row in zip(times, rows):
            # NaN fails the comparison; a sum is finite only when every value is
            if not (0.0 < ti - prev <= gap and math.isfinite(sum(row))):
                return None
            prev = ti
        self.counters.accepted += len(times)
        xp = [self._last_t] + times
        fp = [self._newest if self._newest is not None else self._fb[:, 0].tolist()] + rows
        self._newest, self._last_t = rows[-1], last
        t0, rate, k = self._t0, self.rate_hz, self._k
        g = t0 + k / rate
        grid: List[float] = []
        frames: List[List[float]] = []
        j, top = 0, len(times)
        while g <= last:  # the grid times up to the newest sample, as `_grid_end` finds them
            while j < top and xp[j + 1] <= g:
                j += 1
            # On a sample (or the last one), np.interp returns the sample's own values.
            frames.append(fp[j] if j == top or xp[j] == g else
                          _lerp(g, xp[j], xp[j + 1], fp[j], fp[j + 1]))
            grid.append(g)
            k += 1
            g = t0 + k / rate
        self._k = k
        return grid, frames

    def _sync_scratch(self) -> None:
        """Put the newest accepted sample, which the small path kept in Python, in slot 0."""
        self._tb[0], self._fb[:, 0] = self._last_t, self._newest
        self._newest = None

    def _grid_end(self, last: float) -> int:
        """The first grid index k (>= the next one due) whose time t0 + k / rate is after
        `last`."""
        k_end = math.floor((last - self._t0) * self.rate_hz) + 1
        # floor() on a product can land one off; settle it with the exact grid formula.
        while k_end > self._k and self._t0 + (k_end - 1) / self.rate_hz > last:
            k_end -= 1
        while self._t0 + k_end / self.rate_hz <= last:
            k_end += 1
        return max(k_end, self._k)

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
            out.append(self._continue(t[:bounds[0]], x[:bounds[0]], _sl(lab, 0, bounds[0]), False))
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._start(t[a], x[a], None if lab is None else lab[a])
            out.append(self._continue(t[a + 1:b], x[a + 1:b], _sl(lab, a + 1, b), True))
        return out

    def _finite(self, t, x, lab):
        keep = np.isfinite(t) & (np.abs(t) < self._limit) & np.isfinite(x).all(axis=1)
        self.counters.nonfinite += int(np.count_nonzero(~keep))
        return t[keep], x[keep], (None if lab is None else lab[keep])

    def _start(self, t0: float, x0: np.ndarray, label) -> None:
        self._t0, self._k = float(t0), 0
        if self._fb.shape[0] != x0.shape[0]:
            self._fb = np.empty((x0.shape[0], self._tb.size))
        self._tb[0], self._fb[:, 0] = t0, x0
        self._last_t = float(t0)
        self._last_label = UNLABELLED if label is None else int(label)

    def _abscissae(self, t: np.ndarray) -> np.ndarray:
        """[last accepted time, *t]: a view of the scratch buffer when the chunk fits."""
        n = t.size
        if n > SCRATCH:
            return np.concatenate((self._tb[:1], t))
        self._reserve(n)
        self._tb[1:n + 1] = t
        return self._tb[:n + 1]

    def _reserve(self, n: int) -> None:
        """Grow the scratch buffers to hold the newest accepted sample and `n` more."""
        if n + 1 > self._tb.size:
            tb, fb = self._tb, self._fb
            self._tb, self._fb = np.empty(n + 1), np.empty((fb.shape[0], n + 1))
            self._tb[0], self._fb[:, 0] = tb[0], fb[:, 0]

    def _ordinates(self, x: np.ndarray) -> np.ndarray:
        """[last accepted values, *x] as (channels, 1 + n), like `_abscissae`."""
        n = x.shape[0]
        if n > SCRATCH:
            return np.concatenate((self._fb[:, :1], x.T), axis=1)
        self._fb[:, 1:n + 1] = x.T
        return self._fb[:, :n + 1]

    def _continue(self, t, x, lab, new, copy: bool = True) -> Segment:
        last = t.item(-1) if t.size else self._last_t
        hint, self._grid_hint = self._grid_hint, None
        if hint is not None and hint[0] == self._k and hint[1].size == t.size:
            # `_on_grid` found t to be grid times k .. k + n - 1, so those are the new frames'.
            k_end, grid, on_grid = self._k + t.size, hint[1], True
        else:
            k_end = self._grid_end(last)
            grid = np.add(self._grid_offsets(self._k, k_end), self._t0)
            on_grid = bool(t.size and grid.size == t.size and grid.item(0) == t.item(0)
                           and grid.tobytes() == t.tobytes())
        xp = None
        if on_grid:
            # Samples exactly on the grid (a recording at the spec rate): np.interp would return
            # each sample's own values, so they are the frames.
            values = np.array(x, dtype=np.float64, order="C") if copy else x
            self._fb[:, 0] = x[-1]
        else:
            xp, fp = self._abscissae(t), self._ordinates(x)
            # Channels as rows (contiguous writes); the frames are their transpose, a view.
            values = np.empty((fp.shape[0], grid.size))
            if grid.size:
                for c, channel in enumerate(fp):
                    values[c] = _interp(grid, xp, channel)
            values = values.T
            self._fb[:, 0] = fp[:, -1]
        labels = None
        if lab is not None:
            xp = self._abscissae(t) if xp is None else xp
            lp = np.concatenate([[self._last_label], lab])
            labels = lp[np.searchsorted(xp, grid, side="right") - 1]
            self._last_label = int(lp[-1])
        self._k = k_end
        self._last_t = self._tb[0] = last
        return Segment(grid, values, labels, new)

    def _grid_offsets(self, k0: int, k1: int) -> np.ndarray:
        """k / rate for k in [k0, k1): the grid is t0 + (k / rate), in this order."""
        base = self._offsets_k
        if k0 < base or k1 > base + self._offsets.size:
            self._offsets = np.arange(k0, k0 + max(GRID_BLOCK, k1 - k0), dtype=np.float64)
            self._offsets /= self.rate_hz
            self._offsets_k = base = k0
        return self._offsets[k0 - base:k1 - base]


def _sl(arr, a, b):
    return None if arr is None else arr[a:b]


def resample(times, frames, rate_hz: float, max_gap_s: float, labels=None) -> List[Segment]:
    """Batch path: resample a whole recording (the streaming code, fed once)."""
    return StreamResampler(rate_hz, max_gap_s).push(times, frames, labels)
