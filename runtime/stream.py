"""Streaming classification of one device: raw timestamped samples in, smoothed predictions out.

`StreamClassifier.push` runs the same preprocessing code as training (units -> resampler ->
windower), so any chunking or jitter of a stream yields exactly the windows, and therefore the
predictions, of the offline path `classify_recording` on the same samples.
A bundle's temporal context (`har_runtime.context`) runs between the classifier and the
smoother, one belief per stream, restarted with the smoother.

Counters and their accounting (see docs/RUNTIME.md):
  samples_in == accepted + nonfinite + out_of_order
  frames     == advanced + discarded + buffered
`frames` counts resampled frames; each window advances the stream by `window` frames (the first
after a reset) or by `hop` frames (every later one); frames still waiting for a window are
`buffered`; frames left waiting when a gap resets the windower are `discarded`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Dict, List, NamedTuple, Optional, Protocol, Sequence, Union

import numpy as np

from har_runtime.context import new_context_state
from har_runtime.contract.resample import StreamResampler, resample
from har_runtime.contract.results import ActivityChange, ActivityTracker, Prediction
from har_runtime.contract.smoothing import DEFAULT_SMOOTHING, Smoother, SmoothingSettings, argmax
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.contract.units import channel_scale, convert_samples
from har_runtime.contract.windowing import Windower

#: Windows per classifier call; bounds the input tensor when a large chunk arrives at once.
MAX_BATCH = 256

Event = Union[Prediction, ActivityChange]


class Classifier(Protocol):
    """Anything that maps float32 windows (n, window, C) to float32 probabilities (n, K)."""

    def predict_proba(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass
class StreamCounters:
    """Cumulative counts of one stream (`buffered` is the current number of waiting frames)."""

    samples_in: int = 0
    accepted: int = 0
    nonfinite: int = 0
    out_of_order: int = 0
    gaps: int = 0
    frames: int = 0
    windows: int = 0
    predictions: int = 0
    advanced: int = 0
    discarded: int = 0
    buffered: int = 0

    def to_dict(self) -> Dict[str, int]:
        """Plain dict of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class OfflineWindows:
    """All windows of a recording by the batch path, with their end times.

    `new_segment[i]` is True when window i is the first of a gap-free segment; `labels` holds
    class indices by the spec's labelling rule (-1 rejected) when source labels were given.
    """

    windows: np.ndarray
    t_end: np.ndarray
    new_segment: np.ndarray
    labels: Optional[np.ndarray]


def offline_windows(spec: PreprocessSpec, times, samples, labels=None, acc_unit: str = "g",
                    gyro_unit: str = "rad/s") -> OfflineWindows:
    """Batch path: resample a whole recording and cut every segment into windows."""
    x = convert_samples(np.asarray(samples, dtype=np.float64), spec.channels, acc_unit,
                        spec.acc_unit, gyro_unit, spec.gyro_unit)
    parts, ends, news, labs = [], [], [], []
    for seg in resample(times, x, spec.sample_rate_hz, spec.max_gap_s, labels):
        batch = Windower(spec, with_labels=labels is not None).push(seg.frames, seg.labels)
        parts.append(batch.windows)
        ends.append(seg.times[batch.end_index])
        news.append(np.arange(len(batch)) == 0)
        if labels is not None:
            labs.append(batch.labels)
    empty = np.empty((0,) + spec.input_shape, np.float32)
    return OfflineWindows(
        windows=np.concatenate(parts) if parts else empty,
        t_end=np.concatenate(ends) if ends else np.empty(0),
        new_segment=np.concatenate(news) if news else np.empty(0, bool),
        labels=(np.concatenate(labs) if labs else np.empty(0, np.int64)) if labels is not None
        else None,
    )


class StagedWindows(NamedTuple):
    """What `StreamClassifier.stage` made of one push: its windows (float32 (n, window, C)),
    their end times, where the smoother restarts (indices into them) and the arrival time.
    (A named tuple: one is made per push, and a tuple is the cheapest immutable record.)"""

    windows: np.ndarray
    t_end: List[float]
    resets: List[int]
    arrival: float


class StreamClassifier:
    """Classify one device's live stream (see module docstring).

    `samples` given to `push` are rows of `spec.channels` in `source_acc_unit` /
    `source_gyro_unit`; they are converted to the spec's units before anything else.
    """

    def __init__(self, spec: PreprocessSpec, classifier: Classifier,
                 smoothing: SmoothingSettings = DEFAULT_SMOOTHING, source_acc_unit: str = "g",
                 source_gyro_unit: str = "rad/s", device: str = "default"):
        self.spec = spec
        self.classifier = classifier
        self.smoothing = smoothing
        self.source_acc_unit = source_acc_unit
        self.source_gyro_unit = source_gyro_unit
        self.device = device
        self._scale: Optional[np.ndarray] = None
        self._scale_units = ("", "")  # no unit is named "": the first call computes the scale
        self._unit_scale()  # validates both unit names now rather than on the first sample
        self._no_windows = np.empty((0,) + spec.input_shape, np.float32)
        # A classifier that copies its input at once (TFLiteClassifier) can be handed a view of
        # the windower's buffer by `push_events`; any other gets windows of its own.
        self._view_ok = bool(getattr(classifier, "copies_input", False))
        self.counters = StreamCounters()
        self._resampler = StreamResampler(spec.sample_rate_hz, spec.max_gap_s)
        self._windower = Windower(spec)
        self._smoother = Smoother(spec.labels, smoothing)
        self._tracker = ActivityTracker()
        self._since_reset = 0
        # Temporal context: a classifier opened from a bundle carries the bundle's settings
        # (Bundle.open); the belief is this stream's and restarts with the smoother.
        self._context_settings = getattr(classifier, "context", None)
        self._context = (new_context_state(self._context_settings)
                         if self._context_settings is not None else None)

    def _restart_history(self) -> None:
        """Forget the smoother's and the context's past (a reset or a gap)."""
        self._smoother.reset()
        if self._context is not None:
            self._context.reset()

    def reset(self) -> None:
        """Forget the stream entirely, as if it started anew (counters are kept)."""
        self.counters.discarded += self._windower.buffered
        self.counters.buffered = 0
        self._resampler.reset()
        self._windower.reset()
        self._restart_history()
        self._tracker = ActivityTracker()
        self._since_reset = 0

    @property
    def activity(self) -> str:
        """The last reported smoothed activity."""
        return self._tracker.current

    def push(self, timestamps, samples, arrival: Optional[float] = None) -> List[Prediction]:
        """Add samples (times (n,) seconds, samples (n, channels)); return new predictions."""
        return [e for e in self.push_events(timestamps, samples, arrival)
                if isinstance(e, Prediction)]

    def push_events(self, timestamps, samples, arrival: Optional[float] = None) -> List[Event]:
        """Like `push`, with an `ActivityChange` after each prediction that changes activity.

        `arrival` is the `time.perf_counter()` reading when the samples arrived (default: now).
        """
        staged = self.stage(timestamps, samples, arrival, copy=not self._view_ok)
        return self.finish(staged, self._classify(staged.windows) if staged.t_end else None)

    def stage(self, timestamps, samples, arrival: Optional[float] = None,
              copy: bool = True) -> StagedWindows:
        """The first half of `push_events`: convert, resample and window, but do not classify.

        For callers that classify the windows of many streams in one interpreter call (the
        daemon): hand the probabilities of `StagedWindows.windows` to `finish`, one staged push
        after the other in the order they were staged. `copy=False` lets the windows be a view
        of the windower's buffer, valid only until this stream's next push.
        """
        arrival = time.perf_counter() if arrival is None else arrival
        t = np.asarray(timestamps, dtype=np.float64)
        if t.ndim != 1:
            t = t.reshape(-1)
        x = np.asarray(samples, dtype=np.float64)
        if x.shape != (t.size, len(self.spec.channels)):
            raise ValueError(f"samples must be ({t.size}, {len(self.spec.channels)}) for "
                             f"{list(self.spec.channels)}; got {x.shape}")
        return self.stage_arrays(t, x, arrival, copy)

    def stage_arrays(self, t: np.ndarray, x: np.ndarray, arrival: float,
                     copy: bool = True) -> StagedWindows:
        """`stage` for arrays already in its form (float64 times (n,), float64 samples
        (n, channels) in the source units) and an arrival time, unchecked: for callers that
        have just built them (the daemon's block path)."""
        scale = self._unit_scale()
        if scale is not None:
            x = x * scale
        self.counters.samples_in += t.size
        small = self._resampler.push_rows(t, x)
        if small is not None:
            # A few samples continuing the segment: the resampler counted them as accepted and
            # nothing else (see StreamResampler.push_rows).
            self.counters.accepted = self._resampler.counters.accepted
            windows, t_end = self._window_rows(*small, copy)
            return StagedWindows(windows, t_end, [], arrival)
        windows, t_end, resets = self._window(t, x, copy)
        self._sync_resampler_counters()
        return StagedWindows(windows, t_end, resets, arrival)

    def finish(self, staged: StagedWindows, probs: Optional[np.ndarray]) -> List[Event]:
        """The second half of `push_events`: smooth the probabilities (n, K) of a staged push's
        windows into events (`probs` may be None when it staged no window)."""
        if not staged.t_end:
            if staged.resets:  # a gap with no window after it still ends the old activity
                self._restart_history()
            return []
        if probs is None or len(probs) != len(staged.t_end):
            raise ValueError(f"expected probabilities of {len(staged.t_end)} windows")
        return self._smooth(probs, staged.t_end, staged.resets, staged.arrival)

    def _unit_scale(self) -> Optional[np.ndarray]:
        """Per-channel factors from the source units to the spec's (what `convert_samples`
        multiplies by), or None when all are 1; looked up again only when the units change."""
        units = (self.source_acc_unit, self.source_gyro_unit)
        if units != self._scale_units:
            self._scale = channel_scale(self.spec.channels, units[0], self.spec.acc_unit,
                                        units[1], self.spec.gyro_unit)
            self._scale_units = units
        return self._scale

    def _window(self, t: np.ndarray, x: np.ndarray, copy: bool):
        """Resample and window; return windows, their end times (a list of floats) and the
        smoother reset points (indices into them)."""
        parts: List[np.ndarray] = []
        ends: List[float] = []
        resets: List[int] = []
        segments = self._resampler.push_arrays(t, x, copy=False)  # the windower copies them
        if not segments:
            return self._no_windows, ends, resets
        windower, counters = self._windower, self.counters
        for seg in segments:
            if seg.new:
                counters.discarded += windower.buffered
                windower.reset()
                self._since_reset = 0
                resets.append(len(ends))
            first = windower.count
            windows, first_end = windower.push_windows(seg.frames, None, copy)
            counters.frames += seg.frames.shape[0]
            if windows is not None:
                parts.append(windows)
                k = windows.shape[0]
                if k == 1:  # the streaming case, without index arithmetic
                    ends.append(seg.times.item(first_end - first))
                else:
                    ends.extend(seg.times[first_end - first::self.spec.hop][:k].tolist())
                self._advance(k)
        counters.buffered = windower.buffered
        if len(parts) == 1:  # the usual case: no copy
            return parts[0], ends, resets
        return (np.concatenate(parts) if parts else self._no_windows), ends, resets

    def _window_rows(self, times: List[float], rows: List[List[float]], copy: bool):
        """`_window` of a small push (a device's few samples from an interleaved feed), whose
        frames the resampler made as Python lists; it continues the segment, so no reset."""
        if not rows:  # samples between two grid points
            return self._no_windows, []
        windower, counters = self._windower, self.counters
        first = windower.count
        windows, first_end = windower.push_windows(rows, None, copy)
        counters.frames += len(rows)
        counters.buffered = windower.buffered
        if windows is None:
            return self._no_windows, []
        k = windows.shape[0]
        self._advance(k)
        return windows, times[first_end - first::self.spec.hop][:k]

    def _advance(self, n: int) -> None:
        first = self.spec.window if self._since_reset == 0 else self.spec.hop
        self.counters.advanced += first + (n - 1) * self.spec.hop
        self.counters.windows += n
        self._since_reset += n

    def _smooth(self, probs: np.ndarray, t_end: List[float], resets: Sequence[int],
                arrival: float) -> List[Event]:
        events: List[Event] = []
        smoother, tracker, labels = self._smoother, self._tracker, self.spec.labels
        context = self._context
        for i, (t, values) in enumerate(zip(t_end, probs.tolist())):
            if resets and i in resets:
                self._restart_history()
            if context is not None:
                values = context.update(values)
            pred = _prediction(self.device, labels, values, t, smoother.update(values), arrival)
            self.counters.predictions += 1
            events.append(pred)
            change = tracker.update(pred)
            if change is not None:
                events.append(change)
        if resets and len(t_end) in resets:
            self._restart_history()
        return events

    def _sync_resampler_counters(self) -> None:
        r, c = self._resampler.counters, self.counters
        c.accepted, c.nonfinite, c.out_of_order, c.gaps = (
            r.accepted, r.nonfinite, r.out_of_order, r.gaps)

    def classify_windows(self, windows: np.ndarray) -> np.ndarray:
        """Batch API: float32 windows (n, window, C) -> float32 probabilities (n, K)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1:] != self.spec.input_shape:
            raise ValueError(f"windows must be (n, {self.spec.input_shape[0]}, "
                             f"{self.spec.input_shape[1]}); got {windows.shape}")
        return self._classify(windows).copy()  # the caller owns the result

    def _classify(self, windows: np.ndarray) -> np.ndarray:
        return classify(self.classifier, windows, self.spec.num_classes)

    def classify_recording(self, times, samples) -> List[Prediction]:
        """Offline API: the batch resample + make_windows path over a whole recording.

        Uses fresh smoothing (and context) state and leaves the stream state alone;
        predictions carry the time from this call's start as their latency.
        """
        start = time.perf_counter()
        off = offline_windows(self.spec, times, samples, None, self.source_acc_unit,
                              self.source_gyro_unit)
        probs = self.classify_windows(off.windows)
        smoother = Smoother(self.spec.labels, self.smoothing)
        context = (new_context_state(self._context_settings)
                   if self._context_settings is not None else None)
        out = []
        for i in range(probs.shape[0]):
            if off.new_segment[i]:
                smoother.reset()
                if context is not None:
                    context.reset()
            values = probs[i].tolist()
            if context is not None:
                values = context.update(values)
            out.append(_prediction(self.device, self.spec.labels, values, float(off.t_end[i]),
                                   smoother.update(values), start))
        return out


def classify(classifier: Classifier, windows: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 probabilities (n, num_classes) of float32 windows (n, window, C), at most
    MAX_BATCH windows per classifier call; the result may be the classifier's own array."""
    n = windows.shape[0]
    if n == 0:
        return np.empty((0, num_classes), np.float32)
    if n <= MAX_BATCH:
        probs = np.asarray(classifier.predict_proba(windows), np.float32)
    else:
        probs = np.concatenate([
            np.asarray(classifier.predict_proba(windows[i:i + MAX_BATCH]), np.float32)
            for i in range(0, n, MAX_BATCH)])
    if probs.shape != (n, num_classes):
        raise ValueError(f"classifier returned shape {probs.shape}, expected ({n}, {num_classes})")
    return probs


def _prediction(device: str, labels: Sequence[str], values: List[float], t_end: float,
                smoothed: str, arrival: float) -> Prediction:
    """The Prediction of one window from its probabilities as Python floats."""
    best = argmax(values)
    return Prediction(device, t_end, labels[best], dict(zip(labels, values)), smoothed,
                      values[best], time.perf_counter() - arrival)
