"""The UCI HAR Dataset directory layout, turned back into continuous recordings.

UCI HAR ships fixed windows, not recordings: each row of
`<root>/<split>/Inertial Signals/<signal>_<axis>_<split>.txt` is one window of 128 samples at
50 Hz, consecutive windows overlapping by half, with one activity id per window in
`y_<split>.txt` and the subject in `subject_<split>.txt`. Windows that straddle two activities
were dropped by the dataset's authors, so the rows form runs. A run is rebuilt by stitching
consecutive windows of one subject whose overlapping halves agree; a new recording starts where
they do not. `total_acc` (g, gravity included) and `body_gyro` (rad/s) become `acc` and `gyro`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from har_runtime.contract.labels import HAPT_LABELS
from har_runtime.contract.recording import Recording
from har_train.errors import DataError

UCI_RATE_HZ = 50.0
SPLITS = ("train", "test")
ACC_SIGNAL = "total_acc"
GYRO_SIGNAL = "body_gyro"
#: Overlapping halves agree to the files' 8 significant digits; this only absorbs rounding.
_MATCH_RTOL, _MATCH_ATOL = 1e-5, 1e-6


def load_uci_har_dir(path: Union[str, os.PathLike]) -> List[Recording]:
    """Recordings rebuilt from a UCI HAR Dataset folder (the folder itself or its parent).

    Sessions are numbered per subject in the order the runs appear (train split first).
    """
    root = _find_root(Path(path).expanduser())
    recordings: List[Recording] = []
    sessions: Dict[int, int] = {}
    for split in SPLITS:
        if not (root / split).is_dir():
            continue
        acc, gyro, labels, subjects = _read_split(root, split)
        for start, stop in _runs(acc, gyro, subjects):
            subject = int(subjects[start])
            session = sessions.get(subject, 0)
            sessions[subject] = session + 1
            recordings.append(_stitch(acc[start:stop], gyro[start:stop], labels[start:stop],
                                      subject, session))
    return recordings


def _find_root(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: not a directory (expected the UCI HAR Dataset folder)")
    for candidate in (path, path / "UCI HAR Dataset"):
        if any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DataError(f"{path}: no train/ or test/ folder (expected the UCI HAR Dataset layout)")


def _read_split(root: Path, split: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """acc and gyro windows (n, width, 3), window labels (n,) and subjects (n,) of one split."""
    folder = root / split
    labels = _read_ints(folder / f"y_{split}.txt", minimum=1)
    unknown = sorted(set(labels.tolist()) - set(HAPT_LABELS))
    if unknown:
        raise DataError(f"{folder / f'y_{split}.txt'}: unknown activity ids {unknown}")
    subjects = _read_ints(folder / f"subject_{split}.txt", minimum=0)
    signals = {}
    width = None
    for signal in (ACC_SIGNAL, GYRO_SIGNAL):
        for axis in "xyz":
            file = folder / "Inertial Signals" / f"{signal}_{axis}_{split}.txt"
            signals[signal, axis] = _read_matrix(file, width)
            width = signals[signal, axis].shape[1]
    for file, rows in [(folder / f"subject_{split}.txt", subjects.size)] + [
            (folder / "Inertial Signals" / f"{s}_{a}_{split}.txt", m.shape[0])
            for (s, a), m in signals.items()]:
        if rows != labels.size:
            raise DataError(f"{file}: {rows} rows, but y_{split}.txt has {labels.size}")
    acc = np.stack([signals[ACC_SIGNAL, a] for a in "xyz"], axis=2)
    gyro = np.stack([signals[GYRO_SIGNAL, a] for a in "xyz"], axis=2)
    return acc, gyro, labels, subjects


def _lines(path: Path) -> List[str]:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataError(f"{path}: missing (expected the UCI HAR Dataset layout)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None
    lines = text.rstrip().splitlines()
    if not lines:
        raise DataError(f"{path}: empty file")
    return lines


def _read_ints(path: Path, minimum: int) -> np.ndarray:
    """One integer per line."""
    values = []
    for number, line in enumerate(_lines(path), start=1):
        try:
            value = int(line.strip())
        except ValueError:
            raise DataError(f"{path}:{number}: expected one integer, got {line.strip()[:40]!r}") \
                from None
        if value < minimum:
            raise DataError(f"{path}:{number}: value {value} is below {minimum}")
        values.append(value)
    return np.array(values, dtype=np.int64)


def _read_matrix(path: Path, width: Optional[int]) -> np.ndarray:
    """Whitespace separated floats, `width` per line (the first line's count when None)."""
    rows = [line.split() for line in _lines(path)]
    width = len(rows[0]) if width is None else width
    if width < 2 or width % 2:
        raise DataError(f"{path}:1: {width} values per window; expected an even count >= 2")
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise DataError(f"{path}:{number}: {len(row)} values, expected {width}")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except ValueError:
        matrix = None
    if matrix is None or not np.isfinite(matrix).all():
        for number, row in enumerate(rows, start=1):
            for token in row:
                if not _finite_number(token):
                    raise DataError(f"{path}:{number}: {token[:40]!r} is not a finite number")
    return matrix


def _finite_number(token: str) -> bool:
    try:
        return bool(np.isfinite(float(token)))
    except ValueError:
        return False


def _runs(acc: np.ndarray, gyro: np.ndarray, subjects: np.ndarray) -> List[Tuple[int, int]]:
    """[start, stop) row ranges of windows that continue one another."""
    if acc.shape[0] == 0:
        return []
    hop = acc.shape[1] // 2
    same = subjects[1:] == subjects[:-1]
    for signal in (acc, gyro):
        same &= np.isclose(signal[1:, :hop], signal[:-1, hop:], rtol=_MATCH_RTOL,
                           atol=_MATCH_ATOL).all(axis=(1, 2))
    bounds = [0, *(np.flatnonzero(~same) + 1).tolist(), acc.shape[0]]
    return list(zip(bounds[:-1], bounds[1:]))


def _stitch(acc: np.ndarray, gyro: np.ndarray, labels: np.ndarray, subject: int,
            session: int) -> Recording:
    """One recording from a run of half-overlapping windows: each new window adds its 2nd half."""
    width = acc.shape[1]
    hop = width // 2
    sample_labels = np.concatenate([np.full(width, labels[0]), np.repeat(labels[1:], hop)])
    return Recording(
        subject=subject, session=session, rate_hz=UCI_RATE_HZ,
        acc=np.concatenate([acc[0], acc[1:, hop:].reshape(-1, 3)]),
        gyro=np.concatenate([gyro[0], gyro[1:, hop:].reshape(-1, 3)]),
        labels=sample_labels.astype(np.int64), source="uci")
