"""The learned context head (har_train.context_head): its step form computes what the trained
sequence head computes, it learns a rule only the past reveals, and `har-train context`
checks what it is given."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from har_runtime.recurrent_context import head_features  # noqa: E402
from har_train.cli import cli  # noqa: E402
from har_train.context_head import (HeadConfig, WindowStream, build_sequence_head,  # noqa: E402
                                    fit_head, run_step_model, sequence_probs, step_model)
from har_train.errors import ConfigError  # noqa: E402


def _random_head(k=5, h=7, seed=0):
    keras.utils.set_random_seed(seed)
    head = build_sequence_head(k, h)
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                      for w in head.get_weights()])
    return head


def test_the_step_model_equals_the_sequence_head_window_by_window():
    head = _random_head()
    probs = np.random.default_rng(1).dirichlet(np.ones(5), size=40).astype(np.float32)
    want = np.asarray(head.predict(head_features(probs)[None], verbose=0))[0]
    got = run_step_model(step_model(head), probs)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_padding_a_stream_at_its_end_leaves_its_outputs_alone():
    head = _random_head()
    rng = np.random.default_rng(2)
    streams = [WindowStream(1, rng.dirichlet(np.ones(5), size=n).astype(np.float32),
                            np.zeros(n, np.int64)) for n in (12, 30)]
    short = sequence_probs(head, streams)[0]
    alone = np.asarray(head.predict(head_features(streams[0].probs)[None], verbose=0))[0]
    np.testing.assert_allclose(short, alone, atol=1e-6)


def _marker_streams(n_streams, seed):
    """Class 2 ("stand_to_sit") marks a switch: after it the ambiguous windows are class 0,
    after class 3 they are class 1. Each window alone says 0 or 1 at 50/50."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_streams):
        probs, labels = [], []
        for _ in range(6):
            marker = int(rng.integers(2))
            probs.append(np.eye(4)[2 + marker] * 0.9 + 0.025)
            labels.append(2 + marker)
            for _ in range(int(rng.integers(4, 9))):
                probs.append(np.array([0.45, 0.45, 0.05, 0.05]) + rng.normal(0, 0.02, 4))
                labels.append(marker)
        p = np.clip(np.asarray(probs, np.float32), 1e-3, 1)
        out.append(WindowStream(i, p / p.sum(axis=1, keepdims=True), np.asarray(labels)))
    return out


def test_the_head_learns_what_only_the_past_reveals():
    train, val = _marker_streams(24, 0), _marker_streams(6, 1)
    config = HeadConfig(hidden=8, epochs=60, crop=40, crops_per_epoch=64, seed=0,
                        learning_rate=1e-2)
    head, losses, epoch = fit_head(train, val, 4, config)
    assert len(losses) == 60 and 1 <= epoch <= 60 and losses[epoch - 1] == min(losses)
    y = np.concatenate([s.labels for s in val])
    raw = np.concatenate([s.probs.argmax(axis=1) for s in val])
    ctx = np.concatenate([p.argmax(axis=1) for p in sequence_probs(head, val)])
    assert np.mean(raw == y) < 0.75
    assert np.mean(ctx == y) > 0.95


@pytest.mark.parametrize("change, message", [
    ({"hidden": 4}, "differ from the 4 classes"),
    ({"epochs": 0}, ">= 1"),
    ({"learning_rate": 0.0}, "learning rate"),
])
def test_head_settings_that_cannot_work_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        HeadConfig(**change).check(4)


def test_context_command_refuses_a_folder_that_is_not_k_fold(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", epochs=1)
    result = CliRunner().invoke(cli, ["context", str(run), "--oof", str(tmp_path / "nothing")])
    assert result.exit_code == 3, result.output
    assert "not a k-fold folder" in result.output


def test_fold_names_must_stay_inside_the_k_fold_folder(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", epochs=1)
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "kfold.json").write_text(json.dumps({"folds": ["../run"]}))
    result = CliRunner().invoke(cli, ["context", str(run), "--oof", str(tmp_path / "k")])
    assert result.exit_code == 3 and "not a k-fold folder" in result.output


def test_context_command_refuses_folds_with_other_test_subjects(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", epochs=1)
    fold = make_tiny_run(tmp_path / "k" / "fold1", epochs=1, seed=1)
    config = json.loads((fold / "config.json").read_text())
    config["split"]["test"] = config["split"]["test"][:-1] or [999]
    (fold / "config.json").write_text(json.dumps(config))
    (tmp_path / "k" / "kfold.json").write_text(json.dumps({"folds": ["fold1"]}))
    result = CliRunner().invoke(cli, ["context", str(run), "--oof", str(tmp_path / "k")])
    assert result.exit_code == 3, result.output
    assert "test subjects" in result.output


@pytest.fixture(scope="module")
def kfold_and_run(tmp_path_factory):
    """A 2-fold run and a plain run of one tiny recipe on synthetic:0."""
    root = tmp_path_factory.mktemp("oof")
    base = ["--data", "synthetic:0", "--model", "tiny_dscnn", "--epochs", "2"]
    for args in (["fit", *base, "--kfold", "2", "--out", str(root / "k")],
                 ["fit", *base, "--out", str(root / "r")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return root / "k", root / "r"


def test_context_command_end_to_end_on_out_of_fold_streams(kfold_and_run, tmp_path):
    """The head learns from every non-test subject's out-of-fold stream and is judged on the
    run's validation subjects only."""
    kfold, run = kfold_and_run
    out = tmp_path / "context"
    result = CliRunner().invoke(cli, ["context", str(run), "--oof", str(kfold), "--epochs", "3",
                                      "--hidden", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "validation streams, context: accuracy" in result.output
    summary = json.loads((out / "context.json").read_text())
    split = json.loads((run / "config.json").read_text())["split"]
    assert summary["val_subjects"] == split["val"] and summary["state_size"] == 8
    assert summary["train_streams"] > 0 and summary["val_streams"] > 0
    assert 1 <= summary["best_epoch"] <= 3 and len(summary["val_loss"]) == 3
    assert set(summary["val_scores"]) == {"window", "context"}
    assert summary["config"]["oof_variant"] is None
    step = keras.saving.load_model(out / "context.keras", safe_mode=True)
    assert [tuple(t.shape[1:]) for t in step.inputs] == [(6,), (8,)]


def test_out_of_fold_outputs_can_come_from_the_folds_int8_files(kfold_and_run, tmp_path):
    kfold, run = kfold_and_run
    args = ["context", str(run), "--oof", str(kfold), "--epochs", "2", "--hidden", "8",
            "--oof-variant", "int8", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3 and "har-export convert" in result.output  # no bundles yet
    pytest.importorskip("tensorflow")
    from har_export.pipeline import ExportOptions, export_model

    for fold in ("fold1", "fold2"):
        export_model(kfold / fold / "model.keras", kfold / fold / "bundle",
                     ExportOptions(variants=("int8",), calibration_size=64, overwrite=True))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "context.json").read_text())
    assert summary["config"]["oof_variant"] == "int8" and summary["train_streams"] > 0
