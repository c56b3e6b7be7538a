"""Quantisation-aware training (har_train.qat): fake-quant layers track their ranges while
training, survive a safe-mode reload, and the int8 export takes exactly those ranges and
passes the parity gate against the QAT Keras model (the bundle also records the preset's tier
and, asked to, the posture context)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from har_train import qat  # noqa: E402
from har_train.models import build_model  # noqa: E402
from har_train.presets import make_config  # noqa: E402

pytestmark = pytest.mark.tf


def _layer(**kwargs):
    layer = qat.ActivationQuant(**kwargs)
    layer.build((None, 4))
    return layer


def test_range_tracks_the_batch_extremes_by_moving_average():
    layer = _layer(momentum=0.5)
    first = np.array([[0.5, 2.0, 1.0, 0.0]], np.float32)
    layer(first, training=True)
    assert (float(layer.range_min.numpy()), float(layer.range_max.numpy())) == (0.0, 2.0)
    layer(np.array([[4.0, -1.0, 0.0, 0.0]], np.float32), training=True)
    assert float(layer.range_max.numpy()) == pytest.approx(3.0)
    assert float(layer.range_min.numpy()) == pytest.approx(-0.5)
    # inference leaves the range alone
    layer(np.full((1, 4), 100.0, np.float32), training=False)
    assert float(layer.range_max.numpy()) == pytest.approx(3.0)


def test_outputs_lie_on_the_int8_grid_and_saturate_at_the_range():
    layer = _layer(fixed_range=(-3.0, 3.0))
    x = np.linspace(-5, 5, 401, dtype=np.float32).reshape(1, -1)
    y = np.asarray(layer(x, training=True))
    step = 6.0 / 255
    assert len(np.unique(y)) <= 256
    assert np.allclose(np.round(y / step), y / step, atol=1e-3)
    assert y.max() <= 3.0 + step and y.min() >= -3.0 - step
    assert float(layer.range_max.numpy()) == 3.0  # a fixed range does not track


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="momentum"):
        qat.ActivationQuant(momentum=1.0)
    with pytest.raises(ValueError, match="fixed_range"):
        qat.ActivationQuant(fixed_range=(0.0, 3.0))


def test_a_layer_follows_every_relu_and_the_standardisation_and_reloads(tmp_path):
    spec = make_config("acc3-int8").make_spec()
    model = build_model("tiny_dscnn", spec, np.zeros(3), np.ones(3))
    quant = qat.quantize_activations(model)
    relus = [layer.name for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    names = [layer.name for layer in qat.quant_layers(quant)]
    assert names == ["normalize_fq"] + [f"{r}_fq" for r in relus]
    assert quant.count_params() == model.count_params() + 3 * len(names)
    x = np.random.default_rng(0).normal(size=(4,) + spec.input_shape).astype(np.float32)
    quant.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.array_equal(again.predict(x, verbose=0), quant.predict(x, verbose=0))


def test_fine_tuning_keeps_the_trained_weights_and_needs_qat():
    from har_train.errors import ConfigError

    spec = make_config("acc3-int8").make_spec()
    model = build_model("tiny_dscnn", spec, np.full(3, 0.5), np.full(3, 2.0))
    fresh = qat.quantize_activations(model)
    kept = qat.quantize_activations(model, keep_weights=True)
    want = model.get_layer("stem_conv").get_weights()[0]
    assert np.array_equal(kept.get_layer("stem_conv").get_weights()[0], want)
    assert not np.array_equal(fresh.get_layer("stem_conv").get_weights()[0], want)
    with pytest.raises(ConfigError, match="needs qat"):
        make_config("acc3-int8", {"qat_from": "runs/x"})


def test_qat_run_exports_with_its_trained_ranges_and_passes_the_gate(tmp_path):
    import tensorflow as tf

    from har_export.pipeline import ExportOptions, build_variants, export_model
    from har_train.fit import train

    config = make_config("acc3-int8", {"data": "synthetic:0", "epochs": 12, "qat": True,
                                       "batch_size": 16, "seed": 0})
    result = train(config, tmp_path / "run")
    model = keras.saving.load_model(result.out_dir / "model.keras", safe_mode=True)
    tracked = [layer for layer in qat.quant_layers(model) if layer.fixed_range is None]
    assert tracked and all(float(layer.steps.numpy()) > 0 for layer in tracked)
    export = export_model(result.out_dir / "model.keras", tmp_path / "bundle",
                          ExportOptions(variants=("float32", "int8"), calibration_size=128,
                                        posture_context=True))
    int8 = export.report.variants["int8"]
    assert int8.passed and int8.agreement >= 0.99, int8.to_dict()
    assert export.report.variants["float32"].passed, export.report.variants["float32"].to_dict()
    from har_runtime.bundle import load_bundle

    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.tier == "mcu" and bundle.training["tier"]["met"]  # acc3-int8's tier
    assert bundle.schema_version == 3 and bundle.context.labels == bundle.labels
    blobs, _, _ = build_variants(model, ("int8",), np.zeros((8,) + config.make_spec()
                                                             .input_shape, np.float32))
    interpreter = tf.lite.Interpreter(model_content=blobs["int8"])
    scales = {d["quantization"][0] for d in interpreter.get_tensor_details()}
    # calibration on all-zero windows would give other ranges: these come from training
    for layer in tracked:
        want = (float(layer.range_max.numpy()) - float(layer.range_min.numpy())) / 255
        assert any(abs(s - want) <= 1e-6 * want for s in scales), layer.name
    assert interpreter.get_input_details()[0]["quantization"][0] == pytest.approx(6 / 255)
