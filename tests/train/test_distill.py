"""Distillation: teacher checks, soft targets and `har-train fit --teacher` on synthetic data."""
import json

import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from har_train.augment import WindowFeeder  # noqa: E402
from har_train.cli import cli  # noqa: E402
from har_train.config import TrainConfig  # noqa: E402
from har_train.dataset import load_run, make_spec  # noqa: E402
from har_train.distill import check_teacher, fold_teachers, teacher_probabilities  # noqa: E402
from har_train.errors import ConfigError  # noqa: E402
from har_train.fit import train  # noqa: E402

pytestmark = pytest.mark.tf

FIT = ["fit", "--data", "synthetic:0", "--model", "tiny_dscnn", "--epochs", "1",
       "--batch-size", "32"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teachers") / "t0"
    result = CliRunner().invoke(cli, FIT + ["--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _student_split(teacher_run):
    return load_run(teacher_run).data.split


def test_feeder_mixes_teacher_probabilities_into_the_one_hot_labels(rng):
    x = rng.normal(size=(10, 8, 3)).astype(np.float32)
    y = np.arange(10) % 3
    probs = rng.dirichlet(np.ones(3), size=10).astype(np.float32)
    feeder = WindowFeeder(x, y, 3, 4, 0, ["acc_x", "acc_y", "acc_z"],
                          soft_targets=(probs, 0.25))
    for index in range(len(feeder)):
        rows = feeder._order[index * 4:(index + 1) * 4]
        xb, yb = feeder[index]
        np.testing.assert_allclose(yb, 0.75 * np.eye(3)[y[rows]] + 0.25 * probs[rows], atol=1e-6)
        np.testing.assert_allclose(yb.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(xb, x[rows])
    with pytest.raises(ValueError, match="soft targets"):
        WindowFeeder(x, y, 3, 4, 0, ["acc_x", "acc_y", "acc_z"], soft_targets=(probs[:5], 0.5))


def test_teacher_probabilities_are_the_mean_softmax_of_the_teachers(teacher):
    run = load_run(teacher)
    x = run.data.train.x[:40]
    model = keras.saving.load_model(teacher / "model.keras", safe_mode=True)
    expected = model.predict(x, verbose=0)
    probs = teacher_probabilities([str(teacher), str(teacher)], run.spec, run.data.split, x,
                                  "synthetic:0")
    assert probs.shape == (40, run.spec.num_classes) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), atol=1e-6)


def test_teacher_with_other_preprocessing_or_leaked_subjects_is_refused(teacher):
    split = _student_split(teacher)
    other = make_spec("har6", "acc_gyro")
    with pytest.raises(ConfigError, match="other preprocessing"):
        check_teacher(teacher, other, split, "synthetic:0")
    spec = load_run(teacher).spec
    leaky = split.__class__(split.train[1:], split.val + split.train[:1], split.test)
    with pytest.raises(ConfigError, match=rf"subjects \[{split.train[0]}\].*validation or test"):
        check_teacher(teacher, spec, leaky, "synthetic:0")
    with pytest.raises(ConfigError, match="would not mean the same people"):
        check_teacher(teacher, spec, split, "synthetic:1")
    assert check_teacher(str(teacher), spec, split, "synthetic:0") == teacher


def test_hostile_teacher_folders_get_one_line_errors(teacher, tmp_path):
    spec, split = load_run(teacher).spec, _student_split(teacher)
    data = "synthetic:0"
    with pytest.raises(ConfigError, match="spec.json is missing"):
        check_teacher(tmp_path, spec, split, data)
    with pytest.raises(ConfigError, match="not a readable run folder"):
        check_teacher(teacher / "model.keras", spec, split, data)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("spec.json", "config.json"):
        (broken / name).write_bytes((teacher / name).read_bytes())
    with pytest.raises(ConfigError, match="no model.keras"):
        check_teacher(broken, spec, split, data)
    window = np.zeros((1,) + spec.input_shape, np.float32)
    logits = keras.Sequential([keras.Input(spec.input_shape), keras.layers.Flatten(),
                               keras.layers.Dense(spec.num_classes)])
    logits.save(broken / "model.keras")
    with pytest.raises(ConfigError, match="does not output probabilities"):
        teacher_probabilities([str(broken)], spec, split, window + 1.0, data)
    (broken / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        teacher_probabilities([str(broken)], spec, split, window, data)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        check_teacher(broken, spec, split, data)
    assert TrainConfig(teacher="runs/a").teacher == ("runs/a",)


def test_fit_with_a_teacher_records_it_and_refuses_a_leaky_one_before_writing(teacher,
                                                                              tmp_path):
    out = tmp_path / "student"
    result = CliRunner().invoke(cli, FIT + ["--seed", "4", "--teacher", str(teacher),
                                            "--distill-weight", "0.7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"] == [str(teacher)] and config["distill_weight"] == 0.7
    leaky = TrainConfig(data="synthetic:0", model="tiny_dscnn", epochs=1,
                        teacher=(str(teacher),), val_subjects=(1,))
    with pytest.raises(ConfigError, match="validation or test"):
        train(leaky, tmp_path / "leaky")
    assert not (tmp_path / "leaky").exists()
    bad = CliRunner().invoke(cli, FIT + ["--distill-weight", "0", "--out", str(tmp_path / "w")])
    assert bad.exit_code == 2
    alone = CliRunner().invoke(cli, FIT + ["--distill-weight", "0.3", "--out", str(tmp_path / "w")])
    assert alone.exit_code == 3 and "needs --teacher" in alone.output


def test_kfold_students_learn_from_the_matching_teacher_fold(tmp_path):
    teachers = tmp_path / "teacher-cv"
    first = CliRunner().invoke(cli, FIT + ["--kfold", "2", "--out", str(teachers)])
    assert first.exit_code == 0, first.output
    out = tmp_path / "student-cv"
    result = CliRunner().invoke(cli, FIT + ["--kfold", "2", "--teacher", str(teachers),
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    for i in (1, 2):
        config = json.loads((out / f"fold{i}" / "config.json").read_text())
        assert config["teacher"] == [str(teachers / f"fold{i}")]
    assert fold_teachers((), 2, 1) == ()
    with pytest.raises(ConfigError, match="is a 2-fold folder; the student runs 3"):
        fold_teachers([str(teachers)], 3, 1)
    wrong = CliRunner().invoke(cli, FIT + ["--kfold", "2", "--teacher", str(teachers / "fold1"),
                                           "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 3 and "must be a k-fold folder" in wrong.output
    assert not (tmp_path / "x").exists()
