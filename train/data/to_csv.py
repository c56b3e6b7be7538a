"""Write a training data source's recordings as CSV files in the schema of `har_runtime.csvio`.

This is how a device replays data that only training can read (HAPT's pickle, a UCI HAR
folder): `har-train to-csv hapt OUT --subject 2`, then `har-runtime replay BUNDLE OUT`.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from har_runtime.csvio import write_csv_recording
from har_train.data.sources import load_source
from har_train.errors import DataError


def write_source_csv(source: str, out_dir, subjects: Optional[Sequence[int]] = None) -> List[Path]:
    """Write each recording of `source` (only `subjects`, if given) to OUT/sSS_eEE.csv.

    A session split into several recordings (a CSV source with gaps) gets one file per
    stretch, sSS_eEE_K.csv from the second on, so no stretch overwrites another.

    Returns the files written, in recording order. DataError if no recording is selected.
    A CSV source that names its classes is written with the names.
    """
    data = load_source(source)
    recordings = data.recordings
    names = data.label_names if data.named else None
    if subjects:
        have = sorted({r.subject for r in recordings})
        missing = sorted(set(subjects) - set(have))
        if missing:
            raise DataError(f"data source {source!r} has no subject {missing[0]} "
                            f"(it has {have[0]}-{have[-1]})")
        recordings = [r for r in recordings if r.subject in set(subjects)]
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths: List[Path] = []
        for rec in recordings:
            stem = f"s{rec.subject:02d}_e{rec.session:02d}"
            path = out / f"{stem}.csv"
            stretch = 1
            while path in paths:
                stretch += 1
                path = out / f"{stem}_{stretch}.csv"
            write_csv_recording(path, rec, names)
            paths.append(path)
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    return paths
