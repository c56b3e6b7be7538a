"""Model registry: shapes, softmax output, parameter budgets, raw-unit input, TFLite builtins."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from har_train.dataset import make_spec  # noqa: E402
from har_train.errors import ModelError  # noqa: E402
from har_train.models import (MCU_PARAM_BUDGET, MODELS, build_model, count_params,  # noqa: E402
                              param_table)

pytestmark = pytest.mark.tf

CHANNELS = {"acc": 3, "acc_gyro": 6}


@pytest.fixture(scope="module")
def built():
    """Every model for both channel sets, with non-trivial normalisation statistics."""
    out = {}
    for channels, c in CHANNELS.items():
        spec = make_spec(channels=channels)
        mean, var = np.linspace(-1, 1, c), np.linspace(0.5, 2.0, c)
        for name in MODELS:
            out[name, channels] = (spec, mean, var, build_model(name, spec, mean, var))
    return out


@pytest.mark.parametrize("channels", sorted(CHANNELS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_is_a_softmax_over_the_task_classes(built, name, channels, rng):
    spec, _, _, model = built[name, channels]
    assert tuple(model.input_shape) == (None, 128, CHANNELS[channels])
    x = rng.normal(size=(5, 128, CHANNELS[channels])).astype(np.float32)
    probs = np.asarray(model.predict(x, verbose=0))
    assert probs.shape == (5, spec.num_classes)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_starts_with_the_given_normalisation(built, name):
    spec, mean, var, model = built[name, "acc_gyro"]
    norm = model.layers[1]
    assert isinstance(norm, keras.layers.Normalization)
    x = np.full((1, 4, 6), 3.0, np.float32)
    np.testing.assert_allclose(np.asarray(norm(x))[0, 0], (3.0 - mean) / np.sqrt(var), rtol=1e-5)


def test_parameter_budgets(built):
    for channels in CHANNELS:
        assert count_params(built["tiny_dscnn", channels][3]) < MCU_PARAM_BUDGET
        assert 50_000 <= count_params(built["resnet1d", channels][3]) <= 150_000
    assert param_table(make_spec())["tiny_dscnn"] == count_params(built["tiny_dscnn", "acc"][3])


def test_hapt12_models_have_twelve_outputs():
    spec = make_spec(task="hapt12")
    model = build_model("tiny_dscnn", spec, np.zeros(3), np.ones(3))
    assert model.output_shape == (None, 12)


def test_bad_names_options_and_statistics_are_refused():
    spec = make_spec()
    with pytest.raises(ModelError, match="choose from.*resnet1d.*seed_cnn.*tiny_dscnn"):
        build_model("lstm", spec, np.zeros(3), np.ones(3))
    with pytest.raises(ModelError, match="3 values per channel"):
        build_model("seed_cnn", spec, np.zeros(6), np.ones(6))
    with pytest.raises(ModelError, match="finite"):
        build_model("seed_cnn", spec, np.zeros(3), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ModelError, match="bad model option"):
        build_model("seed_cnn", spec, np.zeros(3), np.ones(3), no_such_option=1)


@pytest.mark.parametrize("input_clip", [0.0, 3.0])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_converts_to_tflite_builtins_only(built, name, input_clip, tmp_path, rng):
    tf = pytest.importorskip("tensorflow")
    spec, mean, var, model = built[name, "acc_gyro"]
    if input_clip:
        model = build_model(name, spec, mean, var, input_clip=input_clip)
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("FLEX") or op == "CUSTOM" for op in ops), ops
    x = (4 * rng.normal(size=(1, 128, 6))).astype(np.float32)  # some values beyond any clip
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, np.asarray(model.predict(x, verbose=0)), atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_clip_saturates_the_standardised_input(name, rng):
    spec = make_spec(channels="acc")
    mean, var = np.array([0.0, 1.0, -1.0]), np.array([1.0, 4.0, 0.25])
    model = build_model(name, spec, mean, var, input_clip=3.0)
    x = rng.normal(size=(4, 128, 3)).astype(np.float32) * 5 * np.sqrt(var) + mean
    z = (x - mean) / np.sqrt(var)
    assert np.abs(z).max() > 3  # the clip is exercised
    clipped = (mean + np.clip(z, -3, 3) * np.sqrt(var)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(clipped, verbose=0),
                               atol=1e-6)
    # Inside the range the clip changes nothing: the model is the unclipped one at 1/3 scale.
    layer = model.get_layer("input_clip")
    inner = np.float32([[[0.0, 1.0 + 2.0 * 2.0, -1.0 - 2.5 * 0.5]]])
    np.testing.assert_allclose(np.asarray(layer(model.get_layer("normalize")(inner))),
                               [[[0.0, 2.0 / 3.0, -2.5 / 3.0]]], rtol=1e-5)


def test_input_clip_must_not_be_negative():
    with pytest.raises(ModelError, match="input_clip must be >= 0"):
        build_model("tiny_dscnn", make_spec(), np.zeros(3), np.ones(3), input_clip=-1.0)
