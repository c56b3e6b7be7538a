"""From recordings to labelled windows, per subject split — the shared preprocessing, applied.

Windows come from `har_runtime.contract.windowing`, the code the device runs, so what the model
trains on is exactly what it will see. Nothing here imports Keras: export and scripts reuse it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.labels import task_labels
from har_runtime.contract.recording import Recording
from har_runtime.contract.spec import CHANNEL_SETS, DEFAULT_SPEC, PreprocessSpec
from har_runtime.contract.windowing import make_windows
from har_train.errors import DataError
from har_train.splits import SubjectSplit


@dataclass(frozen=True)
class WindowSet:
    """Labelled windows: x float32 (n, window, C), y class index (n,), subject id (n,)."""

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.y, minlength=num_classes)


@dataclass(frozen=True)
class SplitData:
    """Train/validation/test windows of one subject split."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    split: SubjectSplit


@dataclass(frozen=True)
class RunData:
    """A training run's spec, config and its exact windows, rebuilt from the run folder."""

    spec: PreprocessSpec
    config: Dict[str, Any]
    data: SplitData


def make_spec(task: str = "har6", channels: str = "acc", acc_mode: str = "total",
              window: int = DEFAULT_SPEC.window, hop: int = DEFAULT_SPEC.hop,
              rate_hz: float = DEFAULT_SPEC.sample_rate_hz, context: int = 0,
              classes: Optional[Tuple[Tuple[int, ...], Tuple[str, ...]]] = None
              ) -> PreprocessSpec:
    """The spec for a named task and channel set (UCI HAR windowing: 2.56 s, 50 % overlap).

    `context` samples before each labelled `window` are fed to the model too: its input is
    `context + window` samples long, and the labelled windows (the examples and their labels)
    are the same as without context, bar those too close to a recording's start to have it.
    `classes` (label ids, names) replace the task's: the data's own classes, whole windows
    of one class each (as har6).
    """
    if channels not in CHANNEL_SETS:
        raise DataError(f"unknown channel set {channels!r}; choose from {sorted(CHANNEL_SETS)}")
    if classes is not None:
        ids, names, fraction = tuple(classes[0]), tuple(classes[1]), 1.0
    else:
        ids, names, fraction = task_labels(task)
    return PreprocessSpec(sample_rate_hz=rate_hz, window=window + context, hop=hop,
                          channels=CHANNEL_SETS[channels], acc_mode=acc_mode, label_ids=ids,
                          labels=names, min_label_fraction=fraction,
                          label_span=window if context else 0)


def data_classes(recordings: Iterable[Recording],
                 label_names: Mapping[int, str]) -> Tuple[Tuple[int, ...], Tuple[str, ...]]:
    """(ids, names) of the labels present in `recordings`, ordered by name."""
    present = set()
    for rec in recordings:
        present.update(int(i) for i in np.unique(rec.labels) if i >= 0)
    if not present:
        raise DataError("the data has no labelled samples")
    pairs = sorted((str(label_names.get(i, i)), i) for i in present)
    return tuple(i for _, i in pairs), tuple(n for n, _ in pairs)


def check_lengths(recordings: Sequence[Recording], spec: PreprocessSpec) -> None:
    """DataError naming a file none of whose recordings holds one window: it would add
    nothing, silently (gap-split stretches shorter than a window are only skipped)."""
    longest: Dict[str, int] = {}
    for rec in recordings:
        longest[rec.source] = max(longest.get(rec.source, 0), len(rec))
    for source, n in longest.items():
        if n < spec.window:
            name = source.partition(":")[2] or source or "a recording"
            raise DataError(f"{name}: {n} samples at {spec.sample_rate_hz:g} Hz "
                            f"({n / spec.sample_rate_hz:.2f} s) is shorter than one window "
                            f"({spec.window} samples, {spec.window / spec.sample_rate_hz:.2f} "
                            "s); give a shorter --window (e.g. --window 1s)")


def windows_from_recordings(recordings: Iterable[Recording], spec: PreprocessSpec) -> WindowSet:
    """All windows the spec's labelling rule accepts, from each recording separately."""
    xs, ys, subjects = [], [], []
    for rec in recordings:
        if len(rec) < spec.window:
            continue
        batch = make_windows(rec.spec_frames(spec), spec, rec.labels)
        keep = batch.labels >= 0
        xs.append(batch.windows[keep])
        ys.append(batch.labels[keep])
        subjects.append(np.full(int(keep.sum()), rec.subject, dtype=np.int64))
    if not xs:
        return WindowSet(np.empty((0,) + spec.input_shape, np.float32),
                         np.empty(0, np.int64), np.empty(0, np.int64))
    return WindowSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(subjects))


def build_split_data(recordings: Sequence[Recording], spec: PreprocessSpec,
                     split: SubjectSplit, train_hop: Optional[int] = None) -> SplitData:
    """Window each side of a subject split; asserts no subject appears on two sides.

    `train_hop` cuts the training side's windows with a smaller hop than the spec's (more,
    overlapping windows: time-shift augmentation that multiplies short classes such as the
    postural transitions); validation and test always use the spec's hop, as the device does.
    """
    split.check()
    train_spec = spec if train_hop is None else dataclasses.replace(spec, hop=int(train_hop))
    sides = {}
    for side in ("train", "val", "test"):
        members = set(getattr(split, side))
        sides[side] = windows_from_recordings([r for r in recordings if r.subject in members],
                                              train_spec if side == "train" else spec)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = set(sides[a].subject.tolist()) & set(sides[b].subject.tolist())
        if shared:
            raise DataError(f"subjects {sorted(shared)} have windows in both {a} and {b}")
    if len(sides["train"]) == 0 or len(sides["test"]) == 0:
        raise DataError("the split leaves no training or no test windows")
    return SplitData(sides["train"], sides["val"], sides["test"], split)


def fingerprint(recordings: Sequence[Recording]) -> str:
    """sha256 over every recording's identity and samples, in a stable order."""
    digest = hashlib.sha256()
    for rec in sorted(recordings, key=lambda r: (r.subject, r.session)):
        digest.update(f"{rec.subject}/{rec.session}/{rec.rate_hz}/{len(rec)}".encode())
        for arr in (rec.acc, rec.labels, rec.gyro):
            if arr is not None:
                digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def subjects_of(recordings: Iterable[Recording]) -> List[int]:
    return sorted({r.subject for r in recordings})


def load_run(run_dir) -> RunData:
    """Rebuild a run's spec, config and windows from its folder (spec.json, config.json):
    CSV data is read again at the spec's rate in the config's units."""
    from har_train.data.sources import load_source

    run = Path(run_dir)
    try:
        spec = PreprocessSpec.from_json((run / "spec.json").read_text())
        config = json.loads((run / "config.json").read_text())
        split = SubjectSplit.from_dict(config["split"])
        source = config["data"]
    except FileNotFoundError as exc:
        raise DataError(f"{run} is not a run folder: {exc.filename} is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{run}: unreadable spec.json/config.json: {exc}") from None
    recordings = load_source(source, spec.sample_rate_hz, config.get("acc_unit", "g"),
                             config.get("gyro_unit", "rad/s")).recordings
    stored = run / "fingerprint.txt"
    if stored.exists() and stored.read_text().strip() != fingerprint(recordings):
        raise DataError(f"data source {source!r} no longer matches the run's fingerprint; "
                        "the recordings changed since training")
    return RunData(spec, config, build_split_data(recordings, spec, split,
                                                  config.get("train_hop")))
