"""Training helpers: config validation, presets, normalisation, class weights, run folders."""
import importlib.util
import sys

import numpy as np
import pytest

pytest.importorskip("keras")

from har_train.config import TrainConfig, make_split  # noqa: E402
from har_train.errors import ConfigError, RunExistsError  # noqa: E402
from har_train.fit import class_sample_weights, normalization_stats  # noqa: E402
from har_train.presets import PRESETS, make_config  # noqa: E402
from har_train.rundir import package_versions, prepare_out_dir  # noqa: E402

pytestmark = pytest.mark.tf


def test_config_refuses_unknown_choices_and_bad_numbers():
    with pytest.raises(ConfigError, match=r"model must be one of \['resnet1d', 'seed_cnn'"):
        TrainConfig(model="lstm")
    with pytest.raises(ConfigError, match="task must be one of"):
        TrainConfig(task="har7")
    with pytest.raises(ConfigError, match="epochs must be > 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)
    with pytest.raises(ConfigError, match="train_hop must be between 1 and hop"):
        TrainConfig(hop=64, train_hop=65)
    with pytest.raises(ConfigError, match="input_clip must be >= 0"):
        TrainConfig(input_clip=-3.0)
    with pytest.raises(ConfigError, match="context must be >= 0"):
        TrainConfig(context=-1)


def test_every_preset_builds_a_valid_config_and_explicit_options_win():
    for name in PRESETS:
        assert make_config(name).preset == name
    config = make_config("acc3-fast", {"epochs": 3, "model": None, "val_subjects": [5, 6]})
    assert config.model == "resnet1d" and config.epochs == 3 and config.augment
    assert config.val_subjects == (5, 6)
    assert make_config(None, {}).model == TrainConfig().model
    with pytest.raises(ConfigError, match="unknown preset 'x'; choose from"):
        make_config("x")
    with pytest.raises(ConfigError, match="unknown training option 'epoch'"):
        make_config(None, {"epoch": 3})


def test_split_uses_given_validation_subjects_and_rejects_test_subjects():
    split = make_split(TrainConfig(val_subjects=(1, 3)), range(1, 31))
    assert split.val == (1, 3) and 2 in split.test and 1 not in split.train
    with pytest.raises(ConfigError, match="not training candidates"):
        make_split(TrainConfig(val_subjects=(2,)), range(1, 31))


def test_normalization_stats_are_per_channel_and_guard_constant_channels(rng):
    x = np.stack([rng.normal(5, 2, size=(40, 10)), np.full((40, 10), 3.0)], axis=2)
    mean, var = normalization_stats(x.astype(np.float32))
    np.testing.assert_allclose(mean, [x[..., 0].mean(), 3.0], rtol=1e-6)
    np.testing.assert_allclose(var, [x[..., 0].var(), 1.0], rtol=1e-5)


def test_class_weights_balance_classes():
    y = np.array([0, 0, 0, 1, 2, 2])
    w = class_sample_weights(y, 4)
    totals = [w[y == k].sum() for k in range(3)]
    np.testing.assert_allclose(totals, [2.0, 2.0, 2.0])
    assert w.sum() == pytest.approx(len(y))


def test_out_dir_is_refused_when_non_empty_and_overwrite_keeps_foreign_files(tmp_path):
    out = tmp_path / "run"
    assert prepare_out_dir(out, False) == out
    (out / "metrics.json").write_text("{}")
    (out / "fold1").mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="--overwrite"):
        prepare_out_dir(out, False)
    prepare_out_dir(out, True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunExistsError, match="not a folder"):
        prepare_out_dir(tmp_path / "file", True)


def test_versions_name_the_backend_without_importing_other_backends():
    before = {"jax", "torch"} & set(sys.modules)
    versions = package_versions()
    assert {"python", "keras", "backend", "numpy"} <= set(versions)
    if importlib.util.find_spec("tensorflow"):
        assert versions["tensorflow"].count(".") >= 1
    assert ({"jax", "torch"} & set(sys.modules)) == before


def test_bad_augmentation_strength_is_refused_before_anything_is_written(tmp_path):
    from har_train.fit import train

    config = TrainConfig(data="synthetic:0", augment=True, rotation_deg=500.0)
    with pytest.raises(ConfigError, match="rotation_deg"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_stored_config_ignores_extra_keys_and_fills_options_it_predates():
    stored = TrainConfig(seed=3, teacher=("runs/a",)).to_dict()
    stored.update(split={"train": [1]}, members=["x"])
    assert TrainConfig.from_stored(stored) == TrainConfig(seed=3, teacher=("runs/a",))
    del stored["teacher"], stored["distill_weight"]
    assert TrainConfig.from_stored(stored) == TrainConfig(seed=3)
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_stored([1, 2])
    with pytest.raises(ConfigError, match="unusable training options"):
        TrainConfig.from_stored({"epochs": 0})
