"""Per-channel int8 input ranges (har_export.input_ranges): the float model stays the same,
heavy-tailed channels get a wider int8 range, and graphs it cannot fold stay untouched."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from har_export.convert import INPUT_CLIP_STD, split_input_norm  # noqa: E402
from har_export.errors import OptionError  # noqa: E402
from har_export.input_ranges import channel_scales, fold_input_ranges  # noqa: E402
from har_runtime.contract.input_norm import InputNorm  # noqa: E402
from har_train.dataset import make_spec  # noqa: E402
from har_train.ensemble import build_ensemble  # noqa: E402
from har_train.models import build_model  # noqa: E402

pytestmark = pytest.mark.tf

MEAN, VAR = np.zeros(3), np.ones(3)


def _windows(n=64, seed=0):
    """Channel 0 light-tailed, channel 1 gaussian, channel 2 with 8-sigma spikes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 128, 3)).astype(np.float32)
    x[..., 0] = rng.uniform(-1.5, 1.5, size=(n, 128))
    x[..., 2] *= np.where(rng.random((n, 128)) < 0.02, 8.0, 1.0)
    return x


def _model(seed=0, name="tiny_dscnn"):
    keras.utils.set_random_seed(seed)
    return build_model(name, make_spec(), MEAN, VAR)


def _core(model):
    return keras.Model(model.layers[1].output, model.output)


def test_channel_scales_widen_only_heavy_tailed_channels():
    scales = channel_scales(_windows(), INPUT_CLIP_STD, 99.9)
    assert scales[0] == 1.0 and scales[1] == pytest.approx(1.1, abs=0.1)
    assert scales[2] > 2.0
    assert channel_scales(_windows(), 100.0, 99.9).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(OptionError, match="percentile"):
        channel_scales(_windows(), INPUT_CLIP_STD, 0.0)


def test_the_folded_model_computes_the_same_function():
    model = _model()
    core, norm = split_input_norm(model)
    before = [w.copy() for w in core.get_weights()]
    x = _windows(16, seed=1)
    folded, wider, record = fold_input_ranges(core, norm, _windows(), INPUT_CLIP_STD, 99.9)
    assert record.applied and record.scales[0] == 1.0 and record.scales[2] > 2.0
    np.testing.assert_allclose(wider.std, np.asarray(norm.std) * np.asarray(record.scales),
                               rtol=1e-6)
    np.testing.assert_allclose(folded.predict(wider.apply(x), verbose=0),
                               model.predict(x, verbose=0), rtol=0, atol=1e-5)
    # The caller's model is the parity reference: its weights must not move.
    for old, new in zip(before, core.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_every_ensemble_member_is_folded():
    members = [_core(_model(seed)) for seed in (1, 2)]
    ensemble = build_ensemble(members, _model().get_layer("normalize"), make_spec())
    core, norm = split_input_norm(ensemble)
    x = _windows(16, seed=2)
    folded, wider, record = fold_input_ranges(core, norm, _windows(), INPUT_CLIP_STD, 99.9)
    assert record.applied
    np.testing.assert_allclose(folded.predict(wider.apply(x), verbose=0),
                               ensemble.predict(x, verbose=0), rtol=0, atol=1e-5)


def test_graphs_that_cannot_be_folded_stay_as_they_are():
    posture = _model(name="tiny_dscnn_posture")  # the input also feeds a pooling branch
    core, norm = split_input_norm(posture)
    same, same_norm, record = fold_input_ranges(core, norm, _windows(), INPUT_CLIP_STD, 99.9)
    assert (same, same_norm) == (core, norm) and not record.applied
    assert "other than Conv1D" in record.skipped
    core, norm = split_input_norm(_model())
    assert fold_input_ranges(core, norm, _windows(), INPUT_CLIP_STD, None)[2].skipped == "disabled"
    plain = keras.Sequential([keras.Input((128, 3)), keras.layers.Conv1D(4, 3),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(6)])
    assert fold_input_ranges(plain, None, _windows(), INPUT_CLIP_STD, 99.9)[0] is plain
    calm = InputNorm((0.0,) * 3, (100.0,) * 3)  # every standardised value is tiny
    assert not fold_input_ranges(core, calm, _windows(), INPUT_CLIP_STD, 99.9)[2].applied


def _narrow_model():
    """Standardisation constants far narrower than the synthetic data: every channel's
    standardised values then spread well past +-3, so their ranges are widened."""
    keras.utils.set_random_seed(0)
    return build_model("tiny_dscnn", make_spec(), [0.1, -0.2, 0.9], [1e-2, 4e-2, 9e-2])


def test_export_ships_the_widened_standardisation_and_stays_exact(tmp_path):
    from click.testing import CliRunner

    from har_export.cli import cli
    from har_runtime.bundle import load_bundle
    from har_runtime.exit_codes import ExitCode
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", model=_narrow_model())
    bundle_dirs = {}
    for percentile in ("99.9", "0"):
        out = bundle_dirs[percentile] = tmp_path / f"bundle-{percentile}"
        chosen = ["--input-range-percentile", percentile] if percentile != "0" else []  # default
        result = CliRunner().invoke(cli, ["convert", str(run / "model.keras"), "--out", str(out),
                                          "--variants", "float32,int8", "--calibration-size",
                                          "128", *chosen])
        # an untrained model may fail the int8 gate
        assert result.exit_code in (ExitCode.OK, ExitCode.PARITY_FAILED), result.output
    widened, plain = (load_bundle(bundle_dirs[p]) for p in ("99.9", "0"))
    scales = widened.training["input_ranges"]["scales"]
    assert max(scales) > 1.0 and plain.training["input_ranges"]["skipped"] == "disabled"
    np.testing.assert_allclose(widened.input_norm.std,
                               np.asarray(plain.input_norm.std) * scales, rtol=1e-5)
    parity = widened.variants["float32"].parity
    assert parity["agreement"] == 1.0 and widened.variants["float32"].deployable
    shown = CliRunner().invoke(cli, ["inspect", str(bundle_dirs["99.9"])]).output
    assert "int8 range  widened to cover the 99.9th percentile" in shown and "acc_z x" in shown
    shown = CliRunner().invoke(cli, ["inspect", str(bundle_dirs["0"])]).output
    assert "int8 range  one input range for every channel (disabled)" in shown


def test_a_percentile_out_of_range_is_a_usage_error(tiny_run, tmp_path):
    from click.testing import CliRunner

    from har_export.cli import cli

    result = CliRunner().invoke(cli, ["convert", str(tiny_run / "model.keras"), "--out",
                                      str(tmp_path / "b"), "--input-range-percentile", "101"])
    assert result.exit_code == 2 and "input-range-percentile" in result.output
    assert not (tmp_path / "b").exists()


def test_the_agreement_probe_scores_only_non_test_windows(tmp_path):
    import json

    from click.testing import CliRunner

    from har_train.dataset import load_run
    from scripts.int8_agreement import main, probe_windows
    from scripts.tiny_run import make_tiny_run

    run_dir = make_tiny_run(tmp_path / "run", model=_narrow_model())
    run = load_run(run_dir)
    probe = probe_windows(run, 64, [0])
    assert len(probe) == len(run.data.val.y) + len(run.data.train.y) - 64
    assert len(probe_windows(run, 64, [0, 1])) < len(probe)
    test = {w.tobytes() for w in run.data.test.x}
    assert not test & {w.tobytes() for w in probe}
    result = CliRunner().invoke(main, [str(run_dir), "--calibration-size", "64",
                                       "--input-range-percentile", "0",
                                       "--input-range-percentile", "99.9",
                                       "--seed", "0", "--seed", "1"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert line["windows"] == len(probe_windows(run, 64, [0, 1]))
    settings = {(s["percentile"], s["seed"]): s for s in line["settings"]}
    assert set(settings) == {(0, 0), (0, 1), (99.9, 0), (99.9, 1)}
    assert settings[(0, 0)]["scales"] == [1.0, 1.0, 1.0]
    assert max(settings[(99.9, 0)]["scales"]) > 1.0
    for scores in settings.values():
        assert all(0.0 <= scores[k] <= 1.0 for k in ("all", "validation", "training"))
