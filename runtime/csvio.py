"""Users' own recordings as CSV files (numpy + the standard library only).

Schema: a header row naming the columns, in any order.

=========  ========  =====================================================
column     required  meaning
=========  ========  =====================================================
timestamp  yes       seconds (float), strictly increasing per subject/session
ax ay az   yes       accelerometer (unit chosen by the caller, default g)
gx gy gz   no        gyroscope, all three or none (default unit rad/s)
label      no        integer activity id (HAPT ids 1..12, -1 unlabelled), or a class
                     name such as ``standing`` (empty or -1: unlabelled)
subject    no        integer subject id (default 0)
session    no        integer session id (default 0)
split      no        ``train``, ``val`` or ``test``: the subject's side of the split
=========  ========  =====================================================

Rows are grouped by (subject, session); each group is converted to g and rad/s and resampled
onto a regular `rate_hz` grid, and a timestamp gap longer than `max_gap_s` splits it into
separate recordings (one (subject, session) can therefore yield several). Any problem raises
`CSVFormatError` with the file and line, e.g. ``walk.csv:17: column 'ax': 'abc' is not a
number``.

A class name gets the id `named_label_id(name)`, which depends on the name alone, so the same
name has the same id in every file and every program that reads one (training, replay).
"""
from __future__ import annotations

import csv
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from har_runtime.contract.labels import HAPT_LABELS, UNLABELLED
from har_runtime.contract.recording import Recording
from har_runtime.contract.resample import resample
from har_runtime.contract.spec import DEFAULT_SPEC
from har_runtime.contract.units import conversion_factor

REQUIRED_COLUMNS = ("timestamp", "ax", "ay", "az")
GYRO_COLUMNS = ("gx", "gy", "gz")
INT_COLUMNS = ("label", "subject", "session")
SPLIT_COLUMN = "split"
ALL_COLUMNS = REQUIRED_COLUMNS + GYRO_COLUMNS + INT_COLUMNS + (SPLIT_COLUMN,)
#: Values of the split column, and the side each names.
SPLIT_VALUES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
#: Ids of named classes start here, above every HAPT id, so a name never reads as a HAPT class.
NAMED_LABEL_BASE = 1000

PathLike = Union[str, os.PathLike]


class CSVFormatError(ValueError):
    """A CSV file that breaks the schema; `path` and `line` (1-based, None: whole file) say
    where."""

    def __init__(self, path: PathLike, line: Optional[int], message: str) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class CSVData:
    """What a set of CSV files holds: recordings, the names of named classes, the split column.

    `label_names` maps the id of every class name found to the name ({} when the files use
    integer ids); `splits` maps each subject to "train", "val" or "test" ({} without a split
    column); `rate_hz` is the rate the recordings were resampled to.
    """

    recordings: List[Recording]
    label_names: Dict[int, str]
    splits: Dict[int, str]
    rate_hz: float


def read_csv_recordings(path: PathLike, acc_unit: str = "g", gyro_unit: str = "rad/s",
                        rate_hz: float = DEFAULT_SPEC.sample_rate_hz,
                        max_gap_s: float = DEFAULT_SPEC.max_gap_s) -> List[Recording]:
    """Read a CSV file, or every *.csv in a folder (sorted by name), into recordings.

    Recordings come out per file, in (subject, session) order, each gap-free stretch its own
    recording with `source` "csv:<file name>".
    """
    return read_csv_data(path, acc_unit, gyro_unit, rate_hz, max_gap_s).recordings


def read_csv_data(path: PathLike, acc_unit: str = "g", gyro_unit: str = "rad/s",
                  rate_hz: Optional[float] = None,
                  max_gap_s: float = DEFAULT_SPEC.max_gap_s) -> CSVData:
    """`read_csv_recordings` plus the class names and split column; `rate_hz` None resamples
    to the files' own rate (`estimate_rate_hz`)."""
    acc_factor = conversion_factor("acc", acc_unit, "g")
    gyro_factor = conversion_factor("gyro", gyro_unit, "rad/s")
    tables = [(file, _read_table(file)) for file in _csv_files(Path(path).expanduser())]
    rate = float(rate_hz) if rate_hz is not None else estimate_rate_hz(tables)
    recordings: List[Recording] = []
    names: Dict[int, str] = {}
    splits: Dict[int, Tuple[str, Path]] = {}
    _check_label_kinds(tables)
    for file, table in tables:
        for lid, name in table.label_names.items():
            if names.setdefault(lid, name) != name:
                raise CSVFormatError(file, None, f"class names {names[lid]!r} and {name!r} "
                                                 "share an id; rename one")
        _merge_splits(file, table, splits)
        for key, rows in _groups(table):
            recordings.extend(_group_recordings(file, table, key, rows, acc_factor, gyro_factor,
                                                rate, max_gap_s))
    return CSVData(recordings, names, {s: side for s, (side, _) in splits.items()}, rate)


def _check_label_kinds(tables) -> None:
    """Refuse files that name classes beside files that give HAPT ids (the two kinds of label
    would never meet in one class set)."""
    kinds = {}
    for file, table in tables:
        labels = table.columns.get("label")
        if labels is not None and np.any(labels != UNLABELLED):
            kinds.setdefault("names" if table.label_names else "ids", file)
    if len(kinds) > 1:
        raise CSVFormatError(kinds["ids"], None, f"label column holds integer ids, but "
                                                 f"{kinds['names'].name} names its classes; "
                                                 "use one kind throughout")


def named_label_id(name: str) -> int:
    """The id of a class name (case and surrounding spaces ignored): a function of the name
    alone, so files that name different subsets of the classes agree on every id."""
    return NAMED_LABEL_BASE + zlib.crc32(name.strip().lower().encode("utf-8")) % (2 ** 30)


def estimate_rate_hz(tables) -> float:
    """The files' sample rate: 1 / the median interval between consecutive samples of a
    (subject, session), rounded to whole Hz when within 2 % of one (phones jitter)."""
    steps = [np.diff(table.columns["timestamp"][rows]) for _, table in tables
             for _, rows in _groups(table)]
    steps = np.concatenate(steps) if steps else np.empty(0)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise CSVFormatError(tables[0][0], None, "too few samples to tell the sample rate; "
                                                 "give it (--rate)")
    rate = 1.0 / float(np.median(steps))
    whole = max(1.0, float(round(rate)))
    return whole if abs(rate - whole) <= 0.02 * whole else round(rate, 1)


def _csv_files(path: Path) -> List[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if not files:
            raise CSVFormatError(path, None, "folder has no *.csv files")
        return files
    if not path.is_file():
        raise CSVFormatError(path, None, "no such file or folder")
    return [path]


class _Table:
    """Parsed columns of one file (floats or ints), with each row's line number, the names of
    its named classes and its split column (strings, or None)."""

    def __init__(self, columns: Dict[str, np.ndarray], lines: np.ndarray,
                 label_names: Mapping[int, str], split: Optional[List[str]]) -> None:
        self.columns = columns
        self.lines = lines
        self.label_names = dict(label_names)
        self.split = split


def _read_table(path: Path) -> _Table:
    header, raw_rows, lines = _raw_rows(path)
    if not raw_rows:
        raise CSVFormatError(path, 1, "header only, no data rows")
    columns: Dict[str, np.ndarray] = {}
    names: Dict[int, str] = {}
    split = None
    for index, name in enumerate(header):
        values = [row[index] for row in raw_rows]
        if name == "label":
            columns[name], names = _labels(path, values, lines)
        elif name == SPLIT_COLUMN:
            split = _splits(path, values, lines)
        else:
            columns[name] = (_ints if name in INT_COLUMNS else _floats)(path, name, values, lines)
    return _Table(columns, np.array(lines, dtype=np.int64), names, split)


def _raw_rows(path: Path) -> Tuple[List[str], List[List[str]], List[int]]:
    """The checked header and the data rows as strings, with their line numbers."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                return _collect(path, reader)
            except UnicodeDecodeError:
                raise CSVFormatError(path, reader.line_num + 1, "not UTF-8 text") from None
            except csv.Error as exc:
                raise CSVFormatError(path, reader.line_num, f"malformed CSV ({exc})") from None
    except OSError as exc:
        raise CSVFormatError(path, None, f"cannot read it ({exc.strerror or exc})") from None


def _collect(path: Path, reader) -> Tuple[List[str], List[List[str]], List[int]]:
    header = _header(path, next(reader, None))
    rows: List[List[str]] = []
    lines: List[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CSVFormatError(path, reader.line_num,
                                 f"{len(row)} fields, the header has {len(header)}")
        rows.append([cell.strip() for cell in row])
        lines.append(reader.line_num)
    return header, rows, lines


def _header(path: Path, row: Optional[Sequence[str]]) -> List[str]:
    if row is None:
        raise CSVFormatError(path, 1, "empty file; expected a header row "
                                      f"({','.join(REQUIRED_COLUMNS)}, ...)")
    names = [cell.strip().lower() for cell in row]
    unknown = [n for n in names if n not in ALL_COLUMNS]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    gyro = [n for n in GYRO_COLUMNS if n in names]
    problem = (f"unknown columns {unknown}; allowed: {', '.join(ALL_COLUMNS)}" if unknown
               else f"duplicate columns {duplicate}" if duplicate
               else f"missing required columns {missing}" if missing
               else f"gyroscope needs all of gx, gy, gz, found only {gyro}"
               if gyro and len(gyro) != 3 else None)
    if problem:
        raise CSVFormatError(path, 1, problem)
    return names


def _floats(path: Path, name: str, values: List[str], lines: List[int]) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, (value, line) in enumerate(zip(values, lines)):
        try:
            out[i] = float(value)
        except ValueError:
            raise CSVFormatError(path, line, f"column {name!r}: {value[:40]!r} is not a number") \
                from None
        if not math.isfinite(out[i]):
            raise CSVFormatError(path, line, f"column {name!r}: {value!r} is not finite")
    return out


def _ints(path: Path, name: str, values: List[str], lines: List[int]) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for i, (value, line) in enumerate(zip(values, lines)):
        try:
            out[i] = int(value)
        except (ValueError, OverflowError):
            raise CSVFormatError(path, line, f"column {name!r}: {value[:40]!r} is not an integer") \
                from None
    return out


def _labels(path: Path, values: List[str],
            lines: List[int]) -> Tuple[np.ndarray, Dict[int, str]]:
    """Label ids, and the names of named classes: a column of integers holds ids; one that
    names classes holds names, with -1 or an empty cell for unlabelled samples."""
    if all(_is_number(v) or not v for v in values):
        return _ints(path, "label", values, lines), {}
    out = np.empty(len(values), dtype=np.int64)
    names: Dict[int, str] = {}
    for i, (value, line) in enumerate(zip(values, lines)):
        if value in ("", str(UNLABELLED)):
            out[i] = UNLABELLED
            continue
        if _is_number(value):
            raise CSVFormatError(path, line, f"column 'label': {value[:40]!r} is a number, but "
                                             "other rows name classes; use names throughout")
        name = value.lower()
        out[i] = named_label_id(name)
        if names.setdefault(int(out[i]), name) != name:
            raise CSVFormatError(path, line, f"class names {names[int(out[i])]!r} and {name!r} "
                                             "share an id; rename one")
    return out, names


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _splits(path: Path, values: List[str], lines: List[int]) -> List[str]:
    out = []
    for value, line in zip(values, lines):
        side = SPLIT_VALUES.get(value.lower())
        if side is None:
            raise CSVFormatError(path, line, f"column 'split': {value[:40]!r} is not one of "
                                             f"{', '.join(SPLIT_VALUES)}")
        out.append(side)
    return out


def _merge_splits(path: Path, table: _Table, splits: Dict[int, Tuple[str, Path]]) -> None:
    """Add each subject's split side to `splits`; a subject on two sides is an error (its
    windows would leak from training into the score)."""
    if table.split is None:
        return
    subject = table.columns.get("subject", np.zeros(table.lines.size, dtype=np.int64))
    for i, (s, side) in enumerate(zip(subject.tolist(), table.split)):
        before = splits.setdefault(int(s), (side, path))
        if before[0] != side:
            where = "" if before[1] == path else f" in {before[1].name}"
            raise CSVFormatError(path, int(table.lines[i]),
                                 f"subject {s} is in split {side!r} here but {before[0]!r}"
                                 f"{where}; a subject belongs to one split")


def _groups(table: _Table) -> List[Tuple[Tuple[int, int], np.ndarray]]:
    """Row indices of each (subject, session), in key order, rows kept in file order."""
    n = table.lines.size
    subject = table.columns.get("subject", np.zeros(n, dtype=np.int64))
    session = table.columns.get("session", np.zeros(n, dtype=np.int64))
    keys = sorted(set(zip(subject.tolist(), session.tolist())))
    return [(key, np.flatnonzero((subject == key[0]) & (session == key[1]))) for key in keys]


def _group_recordings(path: Path, table: _Table, key: Tuple[int, int], rows: np.ndarray,
                      acc_factor: float, gyro_factor: float, rate_hz: float,
                      max_gap_s: float) -> List[Recording]:
    """Check one (subject, session)'s timestamps, convert units and resample it."""
    cols = table.columns
    times = cols["timestamp"][rows]
    bad = np.flatnonzero(np.diff(times) <= 0)
    if bad.size:
        i = rows[bad[0] + 1]
        raise CSVFormatError(path, int(table.lines[i]),
                             f"timestamp {float(times[bad[0] + 1])!r} does not increase "
                             f"(previous {float(times[bad[0]])!r}, subject {key[0]} "
                             f"session {key[1]})")
    has_gyro = "gx" in cols
    names = REQUIRED_COLUMNS[1:] + (GYRO_COLUMNS if has_gyro else ())
    frames = np.stack([cols[c][rows] for c in names], axis=1)
    frames[:, :3] *= acc_factor
    frames[:, 3:] *= gyro_factor
    labels = cols["label"][rows] if "label" in cols else np.full(rows.size, UNLABELLED)
    known = [UNLABELLED, *(table.label_names or HAPT_LABELS)]
    unknown = np.flatnonzero(~np.isin(labels, known))
    if unknown.size:
        raise CSVFormatError(path, int(table.lines[rows[unknown[0]]]),
                             f"label {int(labels[unknown[0]])} is not a HAPT id (1..12) or -1 "
                             "(or name the classes, e.g. 'standing')")
    out = []
    for segment in resample(times, frames, rate_hz, max_gap_s, labels):
        if segment.times.size:
            out.append(Recording(subject=key[0], session=key[1], rate_hz=float(rate_hz),
                                 acc=segment.frames[:, :3],
                                 gyro=segment.frames[:, 3:] if has_gyro else None,
                                 labels=segment.labels.astype(np.int64),
                                 source=f"csv:{path.name}"))
    return out


def write_csv_recording(path: PathLike, recording: Recording,
                        label_names: Optional[Mapping[int, str]] = None) -> None:
    """Write a recording in the schema above (acc in g, gyro in rad/s, times from 0 s).

    Values are written with full float precision, so reading the file back at the recording's
    rate gives the same samples. With `label_names` (a `CSVData.label_names`) the label column
    holds the class names, -1 where unlabelled.
    """
    header = list(REQUIRED_COLUMNS) + (list(GYRO_COLUMNS) if recording.gyro is not None else [])
    header += list(INT_COLUMNS)
    parts = [recording.times[:, None], recording.acc]
    if recording.gyro is not None:
        parts.append(recording.gyro)
    values = np.concatenate(parts, axis=1).tolist()
    labels = recording.labels.tolist()
    if label_names:
        labels = [label_names.get(i, UNLABELLED) for i in labels]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([*map(repr, row), label, recording.subject, recording.session]
                         for row, label in zip(values, labels))
