"""scripts/leaderboard/: rows, per-seed records, aggregation, verdicts, report, quick path."""
import json
from pathlib import Path

import numpy as np
import pytest

from scripts.leaderboard.report import render
from scripts.leaderboard.rows import ROWS, parse_rows
from scripts.leaderboard.stats import Stat, group_records, int8_parity, make_record, summarise

ROOT = Path(__file__).resolve().parents[2]

LABELS = ["walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying"]


def _scores(pred_int8, pred_float, size=20_000):
    common = {"interpreter": "tflite_runtime", "interpreter_version": "2.14.0",
              "deployable": True}
    return {"int8": dict(common, pred=list(pred_int8), size_bytes=size),
            "float32": dict(common, pred=list(pred_float), size_bytes=4 * size)}


def _record(row_key, seed, rng, flip=0, size=20_000, n=120):
    """A record whose float32 model is perfect and whose int8 model flips `flip` windows."""
    y = rng.integers(0, 6, size=n)
    int8 = y.copy()
    int8[:flip] = (y[:flip] + 1) % 6
    from scripts.leaderboard.cli import row_config

    config = row_config(ROWS[row_key], seed, "hapt", None).to_dict()
    extra = {"config": config, "model": "tiny_dscnn", "params": 8950,
             "val": {"accuracy": 0.9, "macro_f1": 0.9},
             "keras_test": {"accuracy": 1.0, "macro_f1": 1.0}, "test_subjects": [2, 4],
             "versions": {"keras": "3"}, "seconds": {"train": 10.0, "export": 2.0, "score": 1.0}}
    return make_record(ROWS[row_key], seed, LABELS, y, _scores(int8, y, size), extra)


def test_parse_rows_keeps_table_order_and_refuses_unknown_names():
    assert parse_rows(None) == tuple(ROWS.values()) == parse_rows("all")
    assert [r.key for r in parse_rows("hapt12-acc, seed-body")] == ["seed-body", "hapt12-acc"]
    with pytest.raises(ValueError, match="unknown row.*har6-lstm.*choose from"):
        parse_rows("har6-acc,har6-lstm")
    with pytest.raises(ValueError, match="unknown row"):
        parse_rows(" , ")


def test_rows_carry_the_issue_targets():
    assert ROWS["har6-acc"].target == 0.95 and ROWS["har6-acc"].max_int8_kb == 32
    assert ROWS["har6-acc_gyro"].target == 0.96 and ROWS["har6-acc_gyro"].members == 3
    assert ROWS["har6-acc_gyro"].member_seeds(2) == (2, 102, 202)
    assert ROWS["hapt12-acc"].members == ROWS["hapt12-acc_gyro"].members == 3
    assert ROWS["har6-acc"].members == ROWS["seed-body"].members == 1
    assert {ROWS[k].metric for k in ("hapt12-acc", "hapt12-acc_gyro")} == {"macro_f1"}
    assert ROWS["seed-body"].train_options()["acc_mode"] == "body"
    assert "int8 <= 32 KB" in ROWS["har6-acc"].target_text()
    assert "macro-F1 >= 0.90" in ROWS["hapt12-acc"].target_text()


def test_int8_parity_is_agreement_and_accuracy_drop():
    y = np.array([0, 1, 2, 3])
    parity = int8_parity(y, np.array([0, 1, 2, 0]), np.array([0, 1, 2, 3]))
    assert parity == {"agreement": 0.75, "drop": 0.25}
    with pytest.raises(ValueError, match="same length"):
        int8_parity(y, y[:3], y)


def test_stat_is_mean_and_population_std():
    stat = Stat.of([0.9, 0.92, 0.94])
    assert stat.mean == pytest.approx(0.92) and stat.std == pytest.approx(np.std([0.9, 0.92, 0.94]))
    assert stat.pct() == "92.00 ± 1.63" and Stat.of([0.5]).std == 0.0
    with pytest.raises(ValueError):
        Stat.of([])


def test_summary_aggregates_seeds_and_judges_the_worst_seed(rng):
    records = [_record("har6-acc", s, rng, flip=flip) for s, flip in ((0, 0), (1, 6))]
    summary = summarise(ROWS["har6-acc"], records)
    assert summary.seeds == (0, 1)
    assert summary.int8["accuracy"].mean == pytest.approx(1 - 3 / 120)
    assert summary.drop_max == pytest.approx(6 / 120) and summary.agreement_min == 0.95
    assert summary.parity_met is False and summary.target_met is True
    assert sum(map(sum, summary.confusion)) == 240
    clean = summarise(ROWS["har6-acc"], [_record("har6-acc", 0, rng)])
    assert clean.parity_met is True


def test_size_target_fails_a_perfect_but_large_model(rng):
    summary = summarise(ROWS["har6-acc"], [_record("har6-acc", 0, rng, size=40 * 1024)])
    assert summary.headline.mean == 1.0 and summary.target_met is False
    assert summarise(ROWS["seed-body"], [_record("seed-body", 0, rng)]).target_met is None


def test_group_records_keeps_one_record_per_row_and_seed(rng):
    first, again = _record("har6-acc", 0, rng, flip=3), _record("har6-acc", 0, rng)
    grouped = group_records([first, again, _record("seed-body", 2, rng)])
    assert [r["seed"] for r in grouped["har6-acc"]] == [0]
    assert grouped["har6-acc"][0] is again and list(grouped) == ["har6-acc", "seed-body"]


def test_report_shows_targets_missed_rows_and_short_seed_counts(rng):
    by_row = {"har6-acc": [_record("har6-acc", 0, rng, flip=30)],
              "seed-body": [_record("seed-body", s, rng) for s in range(5)]}
    summaries = [summarise(ROWS[k], v) for k, v in by_row.items()]
    context = {"command": "python scripts/leaderboard.py", "date": "2025-01-01", "data": "hapt",
               "test_subjects": "2, 4", "interpreter": "tflite_runtime 2.14.0", "full_seeds": 5,
               "note": "Time ran out.", "wall_seconds": 60.0, "versions": {"keras": "3"},
               "choices": "chosen on validation", "evidence": (), "commands": ["cmd"]}
    text = render(summaries, by_row, {k: LABELS for k in by_row}, context)
    har6 = next(line for line in text.splitlines() if line.startswith("| har6-acc | har6"))
    assert "acc % 75.00 ± 0.00" in har6 and "**missed**" in har6
    assert "Rows with fewer than 5 seeds: har6-acc. Time ran out." in text
    assert "84.42 %" in text and "| laying | 0 | 0 | 0 | 0 | 0 |" in text
    assert "chosen on validation" in text


def test_score_bundle_scores_every_requested_variant_with_the_runtime():
    from har_runtime.interpreter import InterpreterUnavailableError
    from scripts.leaderboard.score import score_bundle

    bundle = ROOT / "tests" / "data_golden" / "bundle"
    with np.load(ROOT / "tests" / "data_golden" / "windows.npz") as data:
        x = np.asarray(data["x"], np.float32)
    try:
        scores = score_bundle(bundle, x[:8], ["int8", "float32"])
    except InterpreterUnavailableError:
        pytest.skip("no TFLite interpreter installed")
    for name in ("int8", "float32"):
        assert len(scores[name]["pred"]) == 8 and scores[name]["size_bytes"] > 0
    assert json.loads(json.dumps(scores)) == scores


@pytest.mark.tf
@pytest.mark.slow
def test_quick_run_writes_a_report_from_the_whole_pipeline(tmp_path):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from click.testing import CliRunner
    from scripts.leaderboard.cli import main

    out = tmp_path / "RESULTS.md"
    result = CliRunner().invoke(main, ["--quick", "--rows", "har6-acc", "--work",
                                       str(tmp_path / "work"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| har6-acc | har6 | acc |" in text and "synthetic" in text
    record = json.loads((tmp_path / "work" / "quick" / "har6-acc" / "s0" / "record.json")
                        .read_text())
    assert set(record["variants"]) == {"int8", "float32"}
    again = CliRunner().invoke(main, ["--quick", "--rows", "har6-acc", "--work",
                                      str(tmp_path / "work"), "--out", str(out)])
    assert "reusing" in again.output
    folder = tmp_path / "work" / "quick" / "har6-acc" / "s0"
    trained = (folder / "run" / "model.keras").stat().st_mtime_ns
    redo = CliRunner().invoke(main, ["--quick", "--rows", "har6-acc", "--work",
                                     str(tmp_path / "work"), "--out", str(out), "--reexport"])
    assert redo.exit_code == 0, redo.output
    assert "exporting the saved run again" in redo.output and "training" not in redo.output
    redone = json.loads((folder / "record.json").read_text())
    assert (folder / "run" / "model.keras").stat().st_mtime_ns == trained
    assert redone["seconds"]["train"] == record["seconds"]["train"]
    # exported_by is this process's command line (pytest's here, the script's in real use).
    assert redone["exported_by"].startswith("python -m scripts.leaderboard")
    assert redone["config"] == record["config"]
    assert redone["variants"]["int8"]["size_bytes"] > 0


def test_unknown_row_exits_3():
    from click.testing import CliRunner
    from scripts.leaderboard.cli import main

    result = CliRunner().invoke(main, ["--rows", "nope"])
    assert result.exit_code == 3 and "unknown row" in result.output


def test_report_only_rebuilds_the_report_from_saved_records(tmp_path, rng):
    from click.testing import CliRunner
    from scripts.leaderboard.cli import main

    for seed in (0, 1):
        folder = tmp_path / "work" / "har6-acc" / f"s{seed}"
        folder.mkdir(parents=True)
        record = dict(_record("har6-acc", seed, rng), command="python scripts/leaderboard.py x")
        (folder / "record.json").write_text(json.dumps(record))
    out = tmp_path / "RESULTS.md"
    args = ["--report-only", "--rows", "har6-acc", "--work", str(tmp_path / "work"),
            "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| har6-acc | har6 | acc | acc3-int8 (tiny_dscnn, 8,950) | 2 |" in text
    assert "python scripts/leaderboard.py x" in text and "int8_ls" in text
    empty = CliRunner().invoke(main, ["--report-only", "--rows", "seed-body", "--work",
                                      str(tmp_path / "work"), "--out", str(out)])
    assert empty.exit_code == 3 and "no records" in empty.output


def test_records_of_another_recipe_are_left_out_and_recomputed(tmp_path, rng, monkeypatch):
    from scripts.leaderboard import cli as leaderboard
    from click.testing import CliRunner

    for seed in (0, 1):
        folder = tmp_path / "work" / "har6-acc" / f"s{seed}"
        folder.mkdir(parents=True)
        record = _record("har6-acc", seed, rng)
        if seed == 1:  # made when the preset had another option value
            record["config"]["label_smoothing"] = 0.0
        (folder / "record.json").write_text(json.dumps(record))
    work = tmp_path / "work"
    kept = leaderboard.load_records([ROWS["har6-acc"]], work, "hapt")
    assert [r["seed"] for r in kept] == [0]
    assert leaderboard.load_records([ROWS["har6-acc"]], work, "synthetic:0") == []
    recomputed = []

    def fake_run_one(row, seed, folder, *args, **kwargs):
        recomputed.append((row.key, seed, kwargs.get("reuse")))
        return _record(row.key, seed, rng)

    monkeypatch.setattr(leaderboard, "run_one", fake_run_one)
    import har_train.data.sources

    monkeypatch.setattr(har_train.data.sources, "load_recordings", lambda data: [])
    result = CliRunner().invoke(leaderboard.main, ["--rows", "har6-acc", "--seeds", "2",
                                                   "--work", str(work), "--out",
                                                   str(tmp_path / "R.md")])
    assert result.exit_code == 0, result.output
    assert "har6-acc seed 0: reusing" in result.output
    # The stale seed is trained again; finished member runs of the current recipe may be reused.
    assert recomputed == [("har6-acc", 1, True)]
