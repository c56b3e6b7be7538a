"""Frontier additions: tiny_dscnn_posture, builder options through TrainConfig, the int8 presets."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from har_train.config import TrainConfig  # noqa: E402
from har_train.dataset import make_spec  # noqa: E402
from har_train.errors import ConfigError  # noqa: E402
from har_train.models import MCU_PARAM_BUDGET, build_model, count_params  # noqa: E402
from har_train.presets import PRESETS, make_config  # noqa: E402

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("channels,acc_mode", [("acc", "total"), ("acc", "body_gravity"),
                                               ("acc_gyro", "body_gravity")])
def test_tiny_dscnn_posture_fits_the_mcu_budget(channels, acc_mode):
    spec = make_spec(task="hapt12", channels=channels, acc_mode=acc_mode)
    c = spec.input_shape[1]
    model = build_model("tiny_dscnn_posture", spec, np.zeros(c), np.ones(c))
    assert count_params(model) < MCU_PARAM_BUDGET
    assert model.output_shape == (None, 12)


def test_posture_branch_is_the_mean_normalised_input(rng):
    spec = make_spec(channels="acc")
    mean, var = np.array([0.1, -0.9, 0.2]), np.array([0.04, 0.09, 0.16])
    model = build_model("tiny_dscnn_posture", spec, mean, var)
    probe = keras.Model(model.inputs, model.get_layer("posture").output)
    x = rng.normal(size=(4, 128, 3)).astype(np.float32)
    expected = ((x - mean) / np.sqrt(var)).mean(axis=1)
    np.testing.assert_allclose(np.asarray(probe(x)), expected, rtol=1e-4, atol=1e-5)


def test_model_options_reach_the_builder_and_round_trip_through_json():
    config = TrainConfig(model="tiny_dscnn", model_options={"filters": [16, 24, 32],
                                                             "kernel": 5})
    assert config.model_options == (("filters", (16, 24, 32)), ("kernel", 5))
    record = json.loads(json.dumps(config.to_dict()))
    assert record["model_options"] == {"filters": [16, 24, 32], "kernel": 5}
    assert TrainConfig(**dict(record, val_subjects=None)).model_options == config.model_options
    spec = make_spec()
    small = build_model("tiny_dscnn", spec, np.zeros(3), np.ones(3),
                        **dict(config.model_options))
    default = build_model("tiny_dscnn", spec, np.zeros(3), np.ones(3))
    assert count_params(small) < count_params(default)
    assert TrainConfig().model_options == ()
    with pytest.raises(ConfigError, match="model_options"):
        TrainConfig(model_options=[1, 2])


def test_int8_presets_stay_mcu_sized_and_name_existing_models():
    for name in ("acc3-int8", "acc6-int8", "acc3-int8-hapt12", "acc6-int8-hapt12"):
        config = make_config(name)
        spec = config.make_spec()
        c = spec.input_shape[1]
        model = build_model(config.model, spec, np.zeros(c), np.ones(c),
                            **dict(config.model_options))
        assert count_params(model) < MCU_PARAM_BUDGET
    assert make_config("acc6-int8").channels == "acc_gyro"
    assert make_config("acc3-int8").channels == "acc"
    assert set(PRESETS) >= {"seed", "acc3-fast", "acc3-int8", "acc6", "acc6-int8"}


def test_hapt12_presets_are_the_int8_recipe_plus_class_weights_and_context():
    for channels, base, context in (("acc", "acc3-int8", 128), ("acc_gyro", "acc6-int8", 0)):
        hapt = make_config(f"{base}-hapt12")
        assert (hapt.task, hapt.channels, hapt.class_weight) == ("hapt12", channels, True)
        assert hapt.context == context
        assert hapt.make_spec().input_shape == (128 + context, len(hapt.make_spec().channels))
        plain = hapt.replace(task="har6", class_weight=False, preset=base,
                             context=make_config(base).context)
        assert plain == make_config(base)


def test_quant_noise_is_training_only_and_leaves_the_inference_graph_alone(rng):
    spec = make_spec(channels="acc")
    stats = (np.zeros(3), np.ones(3))
    noisy = build_model("tiny_dscnn", spec, *stats, quant_noise=0.05)
    plain = build_model("tiny_dscnn", spec, *stats)
    noise_layers = [layer for layer in noisy.layers
                    if isinstance(layer, keras.layers.GaussianNoise)]
    assert len(noise_layers) == 7  # after the stem and each depthwise and pointwise activation
    assert count_params(noisy) == count_params(plain)
    for layer in plain.layers:  # same names, same weights
        layer.set_weights(noisy.get_layer(layer.name).get_weights())
    x = rng.normal(size=(4,) + spec.input_shape).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(noisy(x, training=False)),
                                  np.asarray(plain(x, training=False)))
