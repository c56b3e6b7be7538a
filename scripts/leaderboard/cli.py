"""Train, export and score every leaderboard row, then write docs/RESULTS.md.

From the repository root:

    python -m scripts.leaderboard [--quick] [--seeds 5] [--rows all|ROW,...] [--out FILE]
        [--runtime-python PATH] [--work DIR] [--fresh | --reexport] [--report-only]

For each row (task x channels x preset, see scripts/leaderboard/rows.py) and seed:
`har_train.fit.train` writes a run folder (for a row with `members` > 1, one per member seed,
merged by `har_train.ensemble.merge_runs`), `har_export.pipeline.export_model` converts it
(float32 + int8, behind the parity gate), and scripts.leaderboard.score scores both TFLite files
through har_runtime's TFLiteClassifier in a separate process (normally the runtime venv's Python
with tflite-runtime) on the run's test-subject windows. Each (row, seed) result is saved as
WORK/ROW/sSEED/record.json and reused on the next invocation unless --fresh (so are finished
member runs), so rows and seeds can be added in several runs; the report is built from every
saved record of the chosen rows whose members match the row's. --reexport keeps the trained
models and repeats export + scoring (what an exporter change needs).

--quick: synthetic data, 2 epochs, 1 seed, rows seed-body and har6-acc, report in WORK: the
whole path in about two minutes (CI). The report's section on how each choice was made is
docs/RESULTS_CHOICES.md (hand-written). Exit codes: 0 ok, 2 usage, 3 bad options (or an
unreadable docs/RESULTS_CHOICES.md), 5 scoring failed.
"""
from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import click
import numpy as np

from scripts import REPO
from scripts.leaderboard.report import read_choices, render
from scripts.leaderboard.rows import DEFAULT_DATA, DEFAULT_SEEDS, ROWS, Row, parse_rows
from scripts.leaderboard.stats import group_records, make_record, summarise

#: How the leaderboard is started, from the repository root (records and the report say it).
COMMAND = "python -m scripts.leaderboard"
#: How records made before the lab tools became packages name the same command.
OLD_COMMAND = "python scripts/leaderboard.py"
#: The scoring worker, run with `python -m` from the repository root in the runtime venv.
SCORER = "scripts.leaderboard.score"
QUICK_ROWS = "seed-body,har6-acc"
QUICK_DATA = "synthetic"
QUICK_EPOCHS = 2


class BadOptions(click.ClickException):
    exit_code = 3


class ScoringFailed(click.ClickException):
    exit_code = 5


def invocation() -> str:
    """This command line, as a user would type it from the repository root."""
    return " ".join([COMMAND, shlex.join(sys.argv[1:])]).rstrip()


def test_windows(config, recordings):
    """The run's test-subject windows, rebuilt exactly as training split them."""
    from har_train.config import make_split
    from har_train.dataset import build_split_data, subjects_of

    spec = config.make_spec()
    data = build_split_data(recordings, spec, make_split(config, subjects_of(recordings)))
    return spec, data.test


def score_in_runtime(python: str, bundle: Path, x: np.ndarray, folder: Path) -> Dict[str, Any]:
    """Predictions of the bundle's int8 and float32 files from a separate runtime process."""
    windows, out = folder / "test_windows.npz", folder / "scores.json"
    np.savez(windows, x=x.astype(np.float32))
    cmd = [python, "-m", SCORER, *(str(p.absolute()) for p in (bundle, windows, out))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    windows.unlink()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ScoringFailed(f"runtime scoring failed ({shlex.join(cmd)}): {tail[0]}")
    return json.loads(out.read_text())


def export_and_score(folder: Path, config, recordings, runtime_python: str):
    """Export FOLDER/run's model (float32 + int8, parity gate) and score both files in the
    runtime; returns (spec, test windows, scores, seconds taken by each step)."""
    from har_export.pipeline import ExportOptions, export_model

    start = time.monotonic()
    export_model(folder / "run" / "model.keras", folder / "bundle",
                 ExportOptions(variants=("float32", "int8"), overwrite=True))
    exported = time.monotonic()
    spec, test = test_windows(config, recordings)
    scores = score_in_runtime(runtime_python, folder / "bundle", test.x, folder)
    return spec, test, scores, {"export": exported - start,
                                "score": time.monotonic() - exported}


def _finished(run_dir: Path, config) -> bool:
    """Whether RUN_DIR holds a finished run of exactly `config` (so it can be reused)."""
    from har_train.config import TrainConfig

    try:
        same = TrainConfig.from_stored(json.loads((run_dir / "config.json").read_text())) == config
    except (OSError, ValueError):  # unreadable, not JSON, or unusable options (ConfigError)
        return False
    return same and (run_dir / "metrics.json").is_file() and (run_dir / "model.keras").is_file()


def train_row_model(row: Row, config, folder: Path, recordings, reuse: bool) -> Dict[str, Any]:
    """Train the row's model for `config` into FOLDER/run and return its metrics. An ensemble
    row trains its members into FOLDER/member<j> (finished ones are reused when `reuse`), then
    merges them with `har-train ensemble`'s function."""
    from har_train.ensemble import merge_runs
    from har_train.fit import train

    if row.members == 1:
        return train(config, folder / "run", overwrite=True, recordings=recordings).metrics
    single = folder / "run"
    if reuse and _finished(single, config) and not (folder / "member0").exists() \
            and "members" not in json.loads((single / "config.json").read_text()):
        single.rename(folder / "member0")  # the row's earlier one-run model is member 0
    members = []
    for j, seed in enumerate(row.member_seeds(config.seed)):
        member, run_dir = config.replace(seed=seed), folder / f"member{j}"
        if not (reuse and _finished(run_dir, member)):
            train(member, run_dir, overwrite=True, recordings=recordings)
        members.append(run_dir)
    return merge_runs(members, folder / "run", overwrite=True).metrics


def row_config(row: Row, seed: int, data: str, epochs: Optional[int]):
    """The TrainConfig of (row, seed): the row's preset with its options (member 0's seed)."""
    from har_train.presets import make_config

    options = dict(row.train_options(), seed=seed, data=data, epochs=epochs)
    return make_config(row.preset, options)


def _stale(record: Mapping[str, Any], row: Row, seed: int, data: str,
           epochs: Optional[int]) -> bool:
    """Whether a saved record was made by other members or options than the row has now
    (say, its preset changed since)."""
    from har_train.config import TrainConfig
    from har_train.errors import ConfigError

    if _members_of(record) != list(row.member_seeds(seed)):
        return True
    try:
        return TrainConfig.from_stored(record["config"]) != row_config(row, seed, data, epochs)
    except (KeyError, ConfigError):
        return True


def run_one(row: Row, seed: int, folder: Path, data: str, recordings, runtime_python: str,
            epochs: Optional[int], reuse: bool = True) -> Dict[str, Any]:
    """Train, export and score one (row, seed); returns its record."""
    config = row_config(row, seed, data, epochs)
    start = time.monotonic()
    m = train_row_model(row, config, folder, recordings, reuse)
    trained = time.monotonic() - start
    if row.members > 1:  # members may have been reused: count what training them took
        trained = m["train_seconds"] + m["merge_seconds"]
    spec, test, scores, seconds = export_and_score(folder, config, recordings, runtime_python)
    extra = {"config": config.to_dict(), "model": m["model"], "params": m["params"],
             "epochs_run": m.get("epochs_run"), "best_epoch": m.get("best_epoch"),
             "val": {k: m["val"][k] for k in ("accuracy", "macro_f1")},
             "keras_test": {k: m["test"][k] for k in ("accuracy", "macro_f1")},
             "versions": json.loads((folder / "run" / "versions.json").read_text()),
             "test_subjects": sorted({int(v) for v in test.subject}),
             "seconds": dict(seconds, train=trained), "command": invocation()}
    if row.members > 1:
        extra["member_seeds"] = list(row.member_seeds(seed))
    return make_record(row, seed, spec.labels, test.y, scores, extra)


def reexport_one(row: Row, folder: Path, record: Mapping[str, Any], recordings,
                 runtime_python: str) -> Dict[str, Any]:
    """Export and score a saved run again with today's exporter, keeping its training."""
    from har_train.config import TrainConfig

    config = TrainConfig.from_stored(record["config"])
    spec, test, scores, seconds = export_and_score(folder, config, recordings, runtime_python)
    kept = {k: v for k, v in record.items()
            if k not in ("row", "seed", "labels", "n_test", "variants", "parity")}
    kept["seconds"] = dict(record["seconds"], **seconds)
    kept["exported_by"] = invocation()
    return make_record(row, record["seed"], spec.labels, test.y, scores, kept)


def collect(rows: Sequence[Row], seeds: Sequence[int], work: Path, data: str,
            runtime_python: str, epochs: Optional[int], fresh: bool,
            reexport: bool = False) -> None:
    """Make sure WORK holds a record for every (row, seed), computing the missing ones and those
    made with other ensemble members or options than the row now has; with `reexport`, export
    and score the saved runs again (training is kept)."""
    from har_train.data.sources import load_recordings

    recordings = None
    for row in rows:
        for seed in seeds:
            folder = work / row.key / f"s{seed}"
            record_path = folder / "record.json"
            old = json.loads(record_path.read_text()) if record_path.exists() else None
            if old is not None and _stale(old, row, seed, data, epochs):
                old = None
            if old is not None and not fresh and not reexport:
                click.echo(f"{row.key} seed {seed}: reusing {record_path}")
                continue
            recordings = recordings if recordings is not None else load_recordings(data)
            folder.mkdir(parents=True, exist_ok=True)
            if old is not None and reexport and (folder / "run" / "model.keras").is_file():
                click.echo(f"{row.key} seed {seed}: exporting the saved run again ...")
                record = reexport_one(row, folder, old, recordings, runtime_python)
            else:
                times = f" x {row.members} seeds" if row.members > 1 else ""
                click.echo(f"{row.key} seed {seed}: training {row.preset}{times} ...")
                record = run_one(row, seed, folder, data, recordings, runtime_python, epochs,
                                 reuse=not fresh)
            record_path.write_text(json.dumps(record, indent=1) + "\n")
            i8 = record["variants"]["int8"]
            click.echo(f"{row.key} seed {seed}: int8 acc {i8['accuracy']:.4f} macro-F1 "
                       f"{i8['macro_f1']:.4f}, agreement {record['parity']['agreement']:.4f}")


def _members_of(record: Mapping[str, Any]) -> List[int]:
    """Training seeds of the runs behind a record's model (one, unless an ensemble)."""
    return [int(s) for s in record.get("member_seeds", [record["seed"]])]


def load_records(rows: Sequence[Row], work: Path, data: str,
                 epochs: Optional[int] = None) -> List[Mapping[str, Any]]:
    """Every saved record of `rows` under WORK made from `data` by the row's current model and
    options (records of a single run are left out of an ensemble row, and so are records of
    an older version of the row's preset)."""
    out = []
    for row in rows:
        for path in sorted((work / row.key).glob("s*/record.json")):
            record = json.loads(path.read_text())
            if not _stale(record, row, record["seed"], data, epochs):
                out.append(record)
    return out


def report_context(records, command: str, data: str, full_seeds: int, wall: Optional[float],
                   note: Optional[str], quick: bool) -> Dict[str, Any]:
    """Everything the report states besides the figures."""
    first = records[0]
    i8 = first["variants"]["int8"]
    versions = dict(first["versions"])
    versions["runtime interpreter"] = f"{i8['interpreter']} {i8['interpreter_version']}"
    return {"command": command, "date": datetime.date.today().isoformat(), "data": data,
            "test_subjects": ", ".join(map(str, first["test_subjects"])),
            "interpreter": versions["runtime interpreter"], "full_seeds": full_seeds,
            "note": note, "wall_seconds": wall, "versions": versions,
            "choices": _choices(quick), "commands": _commands(records, command)}


def _choices(quick: bool) -> str:
    """The report's section on how each choice was made (docs/RESULTS_CHOICES.md's text)."""
    if quick:
        return ("Quick (CI) run on synthetic data: the figures exercise the pipeline and mean "
                "nothing.")
    try:
        return read_choices()
    except ValueError as exc:
        raise BadOptions(str(exc)) from None


def _commands(records, command: str) -> List[str]:
    """The invocations that produced the records (and a note if they name the old script),
    then this one, then the one-seed recipe."""
    made = sorted({r.get(key, "") for r in records for key in ("command", "exported_by")}
                  - {"", command})
    if any(line.startswith(OLD_COMMAND) for line in made):
        made.append(f"# {OLD_COMMAND} above is {COMMAND} today (same options)")
    recipe = (f"har-train fit --preset {ROWS['har6-acc'].preset}   "
              "# the har6-acc row's recipe, one seed")
    gyro = ROWS["har6-acc_gyro"]
    runs = [f"runs/{gyro.preset}-s{s}" for s in gyro.member_seeds(0)]
    fits = "; ".join(f"har-train fit --preset {gyro.preset} --seed {r.rsplit('-s', 1)[1]} "
                     f"--out {r}" for r in runs)
    ensemble = (f"{fits}; har-train ensemble {' '.join(runs)} --out runs/{gyro.preset}-x"
                f"{gyro.members}   # the har6-acc_gyro row's model, seed 0")
    return made + [command, recipe, ensemble]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="CI-sized: synthetic data, 2 epochs, 1 seed.")
@click.option("--seeds", type=click.IntRange(1, 20), help=f"Seeds 0..N-1 per row "
              f"[default: {DEFAULT_SEEDS}, 1 with --quick].")
@click.option("--rows", "rows_text", help=f"Comma-separated rows or 'all': {', '.join(ROWS)}.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Report file [default: docs/RESULTS.md; WORK/RESULTS.md with --quick].")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/leaderboard"), show_default=True,
              help="Run folders, bundles and per-seed records.")
@click.option("--runtime-python", default=sys.executable, show_default=True,
              help="Python that scores the TFLite files (the runtime venv's, with tflite-runtime).")
@click.option("--fresh", is_flag=True, help="Recompute records that already exist.")
@click.option("--reexport", is_flag=True, help="Keep the saved training runs; export and score "
              "them again (after an exporter change). Missing runs are trained.")
@click.option("--note", help="Sentence added where rows have fewer seeds than a full run.")
@click.option("--report-only", is_flag=True, help="Train nothing: write the report from the "
              "records already in WORK.")
def main(quick: bool, seeds: Optional[int], rows_text: Optional[str], out: Optional[Path],
         work: Path, runtime_python: str, fresh: bool, reexport: bool, note: Optional[str],
         report_only: bool) -> None:
    """Train, export and score the leaderboard rows; write the results report."""
    try:
        rows = parse_rows(rows_text or (QUICK_ROWS if quick else None))
    except ValueError as exc:
        raise BadOptions(str(exc)) from None
    n_seeds = seeds or (1 if quick else DEFAULT_SEEDS)
    data = QUICK_DATA if quick else DEFAULT_DATA
    work = work / "quick" if quick else work
    out = out or (work / "RESULTS.md" if quick else Path("docs/RESULTS.md"))
    start = time.monotonic()
    epochs = QUICK_EPOCHS if quick else None
    if not report_only:
        collect(rows, range(n_seeds), work, data, runtime_python, epochs, fresh, reexport)
    records = load_records(rows, work, data, epochs)
    if not records:
        raise BadOptions(f"no records for rows {[r.key for r in rows]} in {work}")
    grouped = group_records(records)
    by_row = {row.key: grouped[row.key] for row in rows if row.key in grouped}
    summaries = [summarise(ROWS[key], recs) for key, recs in by_row.items()]
    labels = {key: recs[0]["labels"] for key, recs in by_row.items()}
    context = report_context(records, invocation(), data, DEFAULT_SEEDS if not quick else 1,
                             None if report_only else time.monotonic() - start, note, quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(summaries, by_row, labels, context))
    click.echo(f"report written to {out}")

