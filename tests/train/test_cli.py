"""`har-train` end to end on synthetic data: run folder, re-scoring, refusals, exit codes."""
import json
from pathlib import Path

import pytest

pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from har_runtime.exit_codes import ExitCode  # noqa: E402
from har_train.cli import cli  # noqa: E402
from har_train.rundir import RUN_FILES  # noqa: E402

pytestmark = pytest.mark.tf

FIT = ["fit", "--data", "synthetic:0", "--model", "seed_cnn", "--epochs", "2",
       "--batch-size", "16", "--seed", "1"]
METRIC_KEYS = {"accuracy", "macro_f1", "n", "labels", "per_class", "confusion_matrix"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seed"
    result = CliRunner().invoke(cli, FIT + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_fit_writes_every_run_file_and_says_where_the_report_is(run):
    out, output = run
    expected = set(RUN_FILES) - {"kfold.json"}
    assert expected <= {p.name for p in out.iterdir()}
    assert "Epoch 2/2" in output
    assert f"report: {out / 'metrics.json'}" in output
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == "synthetic:0" and config["model"] == "seed_cnn"
    assert config["epochs"] == 2 and config["seed"] == 1
    assert set(config["split"]) == {"train", "val", "test"}
    assert json.loads((out / "versions.json").read_text())["backend"]
    assert len((out / "fingerprint.txt").read_text().strip()) == 64
    assert (out / "history.csv").read_text().count("\n") == 3


def test_metrics_file_has_every_key(run):
    metrics = json.loads((run[0] / "metrics.json").read_text())
    for side in ("val", "test"):
        assert METRIC_KEYS <= set(metrics[side])
        assert set(metrics[side]["per_class"]["walking"]) == {"precision", "recall", "f1",
                                                              "support"}
    assert {"model", "params", "epochs_run", "best_epoch", "windows", "train_seconds"} <= set(
        metrics)
    assert metrics["epochs_run"] == 2
    # synthetic activities are easy: even two epochs of the baseline beat chance (1/6) clearly
    assert metrics["val"]["accuracy"] > 0.4


def test_evaluate_rescores_the_saved_model_identically(run):
    out, _ = run
    stored = json.loads((out / "metrics.json").read_text())["test"]
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rescored = json.loads(result.output)
    assert rescored["accuracy"] == pytest.approx(stored["accuracy"], abs=1e-9)
    assert rescored["confusion_matrix"] == stored["confusion_matrix"]
    table = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert f"accuracy {stored['accuracy']:.4f}" in table.output
    assert "walking_downstairs" in table.output


def test_existing_out_dir_is_refused_without_overwrite(run):
    out, _ = run
    before = (out / "model.keras").stat().st_mtime_ns
    result = CliRunner().invoke(cli, FIT + ["--out", str(out)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "already exists" in result.output and "--overwrite" in result.output
    assert (out / "model.keras").stat().st_mtime_ns == before


@pytest.mark.parametrize("option, value, names", [
    ("--model", "lstm", ["resnet1d", "seed_cnn", "tiny_dscnn"]),
    ("--task", "har7", ["hapt12", "har6"]),
    ("--channels", "gyro", ["acc", "acc_gyro"]),
    ("--preset", "fastest", ["acc3-fast", "acc3-int8", "acc6", "seed"]),
])
def test_bad_choices_list_the_options(option, value, names, tmp_path):
    result = CliRunner().invoke(cli, ["fit", option, value, "--out", str(tmp_path / "x")])
    assert result.exit_code == ExitCode.USAGE
    for name in names:
        assert name in result.output
    assert not (tmp_path / "x").exists()


def test_input_data_and_model_errors_have_distinct_exit_codes(tmp_path):
    bad_source = CliRunner().invoke(cli, ["fit", "--data", "nowhere", "--out", str(tmp_path / "a")])
    assert bad_source.exit_code == ExitCode.BAD_DATA and "unknown data source" in bad_source.output
    assert not (tmp_path / "a").exists()
    bad_val = CliRunner().invoke(cli, ["fit", "--data", "synthetic:0", "--val-subjects", "2",
                                       "--out", str(tmp_path / "b")])
    assert bad_val.exit_code == ExitCode.BAD_INPUT and "not training candidates" in bad_val.output
    bad_list = CliRunner().invoke(cli, ["fit", "--val-subjects", "a,b"])
    assert bad_list.exit_code == ExitCode.USAGE and "comma-separated" in bad_list.output
    both = CliRunner().invoke(cli, ["fit", "--kfold", "3", "--val-subjects", "1",
                                    "--out", str(tmp_path / "c")])
    assert both.exit_code == ExitCode.BAD_INPUT and "drop val_subjects" in both.output
    missing = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "none")])
    assert missing.exit_code == ExitCode.BAD_MODEL and "model.keras is missing" in missing.output


def test_the_same_bad_csv_is_a_data_error_here_and_in_har_runtime(tmp_path):
    from har_runtime.cli import main as runtime_cli

    bad = tmp_path / "bad.csv"
    bad.write_text("this is not,a recording\n1,2\n")
    fit = CliRunner().invoke(cli, ["fit", "--data", f"csv:{bad}", "--out", str(tmp_path / "r")])
    to_csv = CliRunner().invoke(cli, ["to-csv", f"csv:{bad}", str(tmp_path / "out")])
    golden = Path(__file__).parents[1] / "data_golden" / "bundle"
    replay = CliRunner().invoke(runtime_cli, ["replay", str(golden), str(bad)])
    assert fit.exit_code == to_csv.exit_code == replay.exit_code == ExitCode.BAD_DATA
    assert "bad.csv" in fit.output and "Traceback" not in fit.output + to_csv.output


def test_help_lists_the_exit_codes_of_the_table():
    shown = CliRunner().invoke(cli, ["-h"]).output
    for code in (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT, ExitCode.BAD_DATA,
                 ExitCode.BAD_MODEL):
        assert f"  {int(code)}  {code.meaning}" in shown
    assert ExitCode.PARITY_FAILED.meaning not in shown


def test_kfold_reports_mean_and_std_over_folds(tmp_path):
    out = tmp_path / "cv"
    result = CliRunner().invoke(cli, ["fit", "--data", "synthetic:0", "--model", "tiny_dscnn",
                                      "--epochs", "1", "--kfold", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "kfold.json").read_text())
    assert summary["k"] == 2 and len(summary["val_accuracy"]) == 2
    assert "2-fold validation accuracy" in result.output and "±" in result.output
    vals = [set(json.loads((out / f"fold{i}" / "config.json").read_text())["split"]["val"])
            for i in (1, 2)]
    assert not vals[0] & vals[1]


def test_models_and_presets_commands_list_everything():
    models = CliRunner().invoke(cli, ["models"])
    assert models.exit_code == 0
    for name in ("seed_cnn", "resnet1d", "tiny_dscnn"):
        assert name in models.output
    presets = CliRunner().invoke(cli, ["presets"])
    assert presets.exit_code == 0 and "acc3-int8" in presets.output
    assert "model=tiny_dscnn" in presets.output


def test_input_clip_is_built_into_the_model_and_recorded(tmp_path):
    import keras

    out = tmp_path / "clip"
    result = CliRunner().invoke(cli, FIT + ["--input-clip", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["input_clip"] == 3.0
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    assert model.layers[2].name == "input_clip"
    bad = CliRunner().invoke(cli, FIT + ["--input-clip", "-1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == ExitCode.USAGE and "-1" in bad.output


def test_context_feeds_the_samples_before_each_window_and_is_recorded(tmp_path, run):
    import keras

    out = tmp_path / "context"
    result = CliRunner().invoke(cli, FIT + ["--context", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["context"] == 64
    spec = json.loads((out / "spec.json").read_text())
    assert (spec["window"], spec["label_span"]) == (192, 128)
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    assert tuple(model.input_shape) == (None, 192, 3)
    # The same labelled windows as without context, bar those too early to have any.
    plain = json.loads((run[0] / "metrics.json").read_text())["windows"]
    wide = json.loads((out / "metrics.json").read_text())["windows"]
    assert all(0 < wide[side] <= plain[side] for side in plain)
    bad = CliRunner().invoke(cli, FIT + ["--context", "-1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == ExitCode.USAGE and "-1" in bad.output
