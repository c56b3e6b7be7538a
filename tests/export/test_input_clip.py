"""Models that saturate their own input (`har-train --input-clip`): har-export calibrates the
int8 input to exactly the model's clip range, nested ensemble members included."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from har_export.convert import INPUT_CLIP_STD, input_limit, split_input_norm  # noqa: E402
from har_export.pipeline import ExportOptions, export_model  # noqa: E402
from har_runtime.bundle import load_bundle  # noqa: E402
from har_train.dataset import make_spec  # noqa: E402
from har_train.ensemble import build_ensemble  # noqa: E402
from har_train.models import build_model  # noqa: E402

pytestmark = pytest.mark.tf

# Narrow on purpose: the synthetic windows then reach the clip on both sides in calibration.
MEAN, VAR = np.array([0.1, -0.2, 0.9]), np.array([1e-4, 4e-4, 9e-4])


def _model(clip, seed=0):
    keras.utils.set_random_seed(seed)
    return build_model("tiny_dscnn", make_spec(), MEAN, VAR, input_clip=clip)


def _core(model):
    return keras.Model(model.layers[1].output, model.output)


def test_input_limit_is_the_models_own_clip_or_the_default():
    assert input_limit(split_input_norm(_model(3.0))[0]) == 1.0
    assert input_limit(split_input_norm(_model(0.0))[0]) == INPUT_CLIP_STD


def test_ensembles_saturate_only_when_every_member_does():
    clipped = [_core(_model(3.0, s)) for s in (1, 2)]
    norm = _model(3.0).get_layer("normalize")
    both = build_ensemble(clipped, norm, make_spec())
    assert input_limit(split_input_norm(both)[0]) == 1.0
    mixed = build_ensemble([clipped[0], _core(_model(0.0, 3))], norm, make_spec())
    assert input_limit(split_input_norm(mixed)[0]) == INPUT_CLIP_STD


def test_export_calibrates_the_int8_input_to_the_clip_range(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", model=_model(3.0))
    result = export_model(run / "model.keras", tmp_path / "bundle",
                          ExportOptions(variants=("float32", "int8"), calibration_size=256))
    bundle = load_bundle(result.bundle)
    assert result.report.variants["float32"].agreement == 1.0  # the clip converts exactly
    # The runtime divides by 3 standard deviations; the graph sees [-1, 1] at the clip.
    np.testing.assert_allclose(bundle.input_norm.std, 3 * np.sqrt(VAR), rtol=1e-5)
    interpreter = tf.lite.Interpreter(model_path=str(result.bundle / "model_int8.tflite"))
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    assert scale == pytest.approx(2.0 / 255, rel=1e-3) and abs(zero_point) <= 1
