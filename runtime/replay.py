"""Replaying a labelled recording through the live stream path, as a device would see it.

`replay_recording` pushes a recording's samples into a `StreamClassifier` in small chunks, in
real time or faster, then condenses the smoothed predictions into an activity timeline and,
when the recording has labels, scores each window against the spec's own window labelling rule
(the same truth training used).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.recording import Recording
from har_runtime.contract.results import Prediction
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.stream import Classifier, StreamClassifier, StreamCounters, offline_windows

#: Seconds of recording pushed per chunk (a phone typically batches ~100 ms of samples).
CHUNK_S = 0.1


class RecordingError(ValueError):
    """A recording that cannot be replayed (one-line message)."""


@dataclass(frozen=True)
class TimelineSegment:
    """A stretch of one smoothed activity, `start`..`end` seconds from the recording's start."""

    start: float
    end: float
    activity: str


@dataclass(frozen=True)
class ReplayResult:
    """Predictions of one replayed recording, its timeline and (with labels) its accuracy.

    `truth` holds the class index of each prediction's window by the spec's rule (-1: the rule
    rejects the window, so it is not scored); accuracies are None when nothing was scored.
    """

    name: str
    t0: float
    predictions: Tuple[Prediction, ...]
    truth: Optional[np.ndarray]
    timeline: Tuple[TimelineSegment, ...]
    accuracy: Optional[float]
    smoothed_accuracy: Optional[float]
    scored: int
    counters: StreamCounters


def recording_name(rec: Recording) -> str:
    """Human-readable identity of a recording."""
    return f"subject {rec.subject} session {rec.session} ({rec.source or 'recording'})"


def replay_recording(rec: Recording, spec: PreprocessSpec, classifier: Classifier,
                     smoothing: SmoothingSettings, speed: Optional[float] = 1.0,
                     sleep: Callable[[float], None] = time.sleep) -> ReplayResult:
    """Stream `rec` (acc in g, gyro in rad/s) at `speed` x real time (None: as fast as possible)."""
    try:
        samples = rec.frames(spec.channels)
    except ValueError as exc:
        raise RecordingError(f"{recording_name(rec)}: {exc}") from None
    times = rec.times
    stream = StreamClassifier(spec, classifier, smoothing, device=f"s{rec.subject}/{rec.session}")
    step = max(1, int(round(CHUNK_S * rec.rate_hz)))
    start = time.monotonic()
    predictions: List[Prediction] = []
    for i in range(0, len(times), step):
        if speed is not None:
            due = start + (times[min(i + step, len(times)) - 1] - times[0]) / speed
            delay = due - time.monotonic()
            if delay > 0:
                sleep(delay)
        predictions.extend(stream.push(times[i:i + step], samples[i:i + step]))
    truth = _truth(rec, spec, samples, predictions)
    acc, smoothed_acc, scored = _score(predictions, truth, spec.labels)
    t0 = float(times[0]) if len(times) else 0.0
    return ReplayResult(recording_name(rec), t0, tuple(predictions), truth,
                        timeline(predictions, t0), acc, smoothed_acc, scored, stream.counters)


def _truth(rec: Recording, spec: PreprocessSpec, samples: np.ndarray,
           predictions: Sequence[Prediction]) -> Optional[np.ndarray]:
    if not np.any(np.isin(rec.labels, spec.label_ids)):
        return None
    off = offline_windows(spec, rec.times, samples, rec.labels)
    # Stream and batch paths make bit-identical windows, so their end times match exactly.
    by_end = dict(zip(off.t_end.tolist(), off.labels.tolist()))
    return np.array([by_end.get(p.t_end, -1) for p in predictions], dtype=np.int64)


def _score(predictions: Sequence[Prediction], truth: Optional[np.ndarray],
           labels: Sequence[str]) -> Tuple[Optional[float], Optional[float], int]:
    if truth is None or not np.any(truth >= 0):
        return None, None, 0
    keep = truth >= 0
    names = np.array(labels)[truth[keep]]
    raw = np.array([p.label for p, k in zip(predictions, keep) if k])
    smoothed = np.array([p.smoothed_label for p, k in zip(predictions, keep) if k])
    return float(np.mean(raw == names)), float(np.mean(smoothed == names)), int(keep.sum())


def timeline(predictions: Sequence[Prediction], t0: float = 0.0) -> Tuple[TimelineSegment, ...]:
    """Merge consecutive equal smoothed labels into segments (each runs to the next's start)."""
    out: List[TimelineSegment] = []
    for p in predictions:
        t = p.t_end - t0
        if out and out[-1].activity == p.smoothed_label:
            out[-1] = TimelineSegment(out[-1].start, t, p.smoothed_label)
        else:
            if out:
                out[-1] = TimelineSegment(out[-1].start, t, out[-1].activity)
            out.append(TimelineSegment(t, t, p.smoothed_label))
    return tuple(out)


def panel_title(res: ReplayResult) -> str:
    """A replay panel's title: the recording and, with labels, both accuracies by name."""
    if res.accuracy is None:
        return f"{res.name} (no labels: not scored)"
    return (f"{res.name}: window accuracy {res.accuracy:.3f}, smoothed accuracy "
            f"{res.smoothed_accuracy:.3f} ({res.scored} labelled windows)")


def timeline_figure(plt, results: Sequence[ReplayResult], labels: Sequence[str]):
    """Predicted (per window and smoothed) vs true activity over time, one panel per recording."""
    names = list(labels) + ["unknown"]
    fig, axes = plt.subplots(len(results), 1, figsize=(12, 0.4 + 2.8 * len(results)),
                             squeeze=False)
    for ax, res in zip(axes[:, 0], results):
        t = np.array([p.t_end - res.t0 for p in res.predictions])
        raw = [names.index(p.label) for p in res.predictions]
        smooth = [names.index(p.smoothed_label) for p in res.predictions]
        if res.truth is not None:
            true = np.where(res.truth >= 0, res.truth, np.nan)
            ax.step(t, true, where="post", color="black", lw=3, alpha=0.35, label="true")
        ax.plot(t, raw, ".", ms=3, color="tab:orange", label="window")
        ax.step(t, smooth, where="post", color="tab:blue", lw=1.2, label="smoothed")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("time from recording start (s; each point is a window's end)", fontsize=8)
        ax.set_title(panel_title(res), fontsize=9)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)
    fig.suptitle("replay: predicted vs true activity (window: raw per-window prediction; "
                 "smoothed: what the device reports)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_timelines(results: Sequence[ReplayResult], labels: Sequence[str], path: str) -> None:
    """Write `timeline_figure` as a PNG. Needs matplotlib (raises ImportError without it)."""
    import matplotlib  # noqa: PLC0415 - optional, only for --png

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig = timeline_figure(plt, results, labels)
    fig.savefig(path, dpi=110)
    plt.close(fig)
