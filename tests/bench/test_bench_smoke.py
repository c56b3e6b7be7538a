"""Smoke tests of scripts.bench's pure parts, its timing harness (har_runtime.benchmark) and its
runtime worker on the golden bundle.

Behaviour only: MAC arithmetic, statistics, formatting, target verdicts, the ingest payload and
the report text. No assertion depends on how fast this machine is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from har_runtime import benchmark as harness
from scripts.bench import cli as bench
from scripts.bench import common
from scripts.bench import metrics
from scripts.bench import report

ROOT = Path(__file__).resolve().parents[2]

GOLDEN = ROOT / "tests" / "data_golden" / "bundle"


# -- MAC counting ------------------------------------------------------------------------------
def test_conv2d_macs_are_output_elements_times_kernel_taps_times_input_channels():
    assert metrics.tflite_op_macs("CONV_2D", [1, 1, 61, 64], [64, 1, 8, 3]) == 61 * 64 * 8 * 3


def test_depthwise_macs_have_no_input_channel_factor():
    assert metrics.tflite_op_macs("DEPTHWISE_CONV_2D", [1, 1, 64, 32], [1, 1, 9, 32]) == \
        64 * 32 * 9


def test_fully_connected_macs_are_units_times_inputs():
    assert metrics.tflite_op_macs("FULLY_CONNECTED", [1, 6], [6, 64]) == 6 * 64


def test_batch_dimension_is_dropped_and_unknown_dims_read_as_one():
    one = metrics.tflite_op_macs("CONV_2D", [1, 1, 10, 4], [4, 1, 3, 2])
    assert metrics.tflite_op_macs("CONV_2D", [-1, 1, 10, 4], [4, 1, 3, 2]) == one
    assert metrics.tflite_op_macs("CONV_2D", [8, 1, 10, 4], [4, 1, 3, 2]) == one


def test_ops_without_macs_count_zero_and_bad_weights_raise():
    assert metrics.tflite_op_macs("SOFTMAX", [1, 6], [6]) == 0
    with pytest.raises(ValueError, match="4-D"):
        metrics.tflite_op_macs("CONV_2D", [1, 1, 10, 4], [4, 3, 2])
    with pytest.raises(ValueError, match="2-D"):
        metrics.tflite_op_macs("FULLY_CONNECTED", [1, 6], [6, 4, 1])


def test_keras_conv1d_counts_the_same_as_the_conv2d_tflite_makes_of_it():
    keras = metrics.keras_layer_macs("Conv1D", (None, 128, 3), (None, 61, 64),
                                     {"kernel_size": (8,), "groups": 1})
    assert keras == metrics.tflite_op_macs("CONV_2D", [1, 1, 61, 64], [64, 1, 8, 3])


def test_keras_layer_macs_for_depthwise_separable_dense_and_others():
    assert metrics.keras_layer_macs("DepthwiseConv1D", (None, 64, 32), (None, 64, 32),
                                    {"kernel_size": (9,)}) == 64 * 32 * 9
    assert metrics.keras_layer_macs("SeparableConv1D", (None, 64, 8), (None, 64, 16),
                                    {"kernel_size": (5,), "depth_multiplier": 1}) == \
        64 * 8 * 5 + 64 * 8 * 16
    assert metrics.keras_layer_macs("Dense", (None, 64), (None, 6), {}) == 64 * 6
    assert metrics.keras_layer_macs("Dense", (None, 10, 64), (None, 10, 6), {}) == 10 * 64 * 6
    assert metrics.keras_layer_macs("Conv1D", (None, 32, 8), (None, 32, 8),
                                    {"kernel_size": (3,), "groups": 4}) == 32 * 8 * 3 * 8 // 4
    assert metrics.keras_layer_macs("BatchNormalization", (None, 64, 8), (None, 64, 8), {}) == 0


# -- statistics and timing loops ---------------------------------------------------------------
def test_summarize_reports_percentiles_in_milliseconds():
    stats = harness.summarize(np.arange(1, 101) / 1000.0)
    assert stats.n == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.min_ms == pytest.approx(1.0)
    assert stats.mean_ms == pytest.approx(50.5)


@pytest.mark.parametrize("bad", [[], [0.1, float("nan")], [-0.001]])
def test_summarize_refuses_empty_or_invalid_durations(bad):
    with pytest.raises(ValueError):
        harness.summarize(bad)


def test_time_interleaved_takes_one_call_of_each_function_per_round():
    order = []
    out = harness.time_interleaved({"a": lambda: order.append("a"),
                                    "b": lambda: order.append("b")}, n=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert set(out) == {"a", "b"} and all(v.shape == (3,) for v in out.values())


def test_stream_pusher_makes_one_prediction_per_hop_on_the_golden_bundle():
    from scripts.bench import rt as bench_rt
    from har_runtime.bundle import load_bundle

    bundle = load_bundle(GOLDEN)
    push, check = bench_rt.stream_pusher(bundle.spec, bundle.open("float32"), bundle.smoothing,
                                         calls=5)
    for _ in range(5):
        push()
    check()  # raises unless 6 predictions (priming window + 5 hops) were made


def test_time_calls_runs_warmup_untimed_then_n_timed_calls():
    calls = []
    out = harness.time_calls(lambda: calls.append(1), n=5, warmup=2)
    assert len(calls) == 7 and out.shape == (5,) and np.all(out >= 0)


def test_throughput_counts_the_calls_it_timed():
    calls = []
    result = harness.throughput(lambda: calls.append(1), windows_per_call=64, calls=10,
                                blocks=5, warmup=1)
    assert len(calls) == 11 and result["calls"] == 10 and result["batch"] == 64
    assert result["min_windows_per_s"] <= result["windows_per_s"] <= result["max_windows_per_s"]


def test_parse_status_reads_kib_fields():
    text = "Name:\tpython\nVmHWM:\t   46308 kB\nVmRSS:\t  40000 kB\n"
    assert common.parse_status_kib(text, "VmHWM") == 46308
    assert common.parse_status_kib(text, "VmSwap") is None


# -- formatting and verdicts -------------------------------------------------------------------
def test_ratio_and_number_formatting():
    assert metrics.ratio(6.0, 3.0) == 2.0
    assert metrics.ratio(None, 3.0) is None and metrics.ratio(1.0, 0.0) is None
    assert metrics.fmt_ratio(23.46) == "23.5x"
    assert metrics.fmt_ratio(3.0) == "3.00x"
    assert metrics.fmt_ratio(1234.4) == "1,234x"
    assert metrics.fmt_ratio(None) == "n/a"
    assert metrics.fmt_ms(0.0271) == "0.027"
    assert metrics.fmt_ms(12.3) == "12.30"
    assert metrics.fmt_ms(250.4) == "250"
    assert metrics.fmt_count(250000.2) == "250,000"
    assert metrics.fmt_kib(2048) == "2.0"


def test_markdown_table_escapes_pipes_and_checks_widths():
    table = metrics.markdown_table(["a", "b"], [["x|y", 1]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]
    with pytest.raises(ValueError, match="2 columns"):
        metrics.markdown_table(["a", "b"], [["only one"]])


def test_target_verdicts_follow_direction_and_missing_values():
    assert metrics.Target("speed", 25.0, 20.0, True, "x").verdict() == "met"
    assert metrics.Target("speed", 15.0, 20.0, True, "x").verdict() == "MISSED"
    assert metrics.Target("rss", 61.0, 60.0, False, "MB").verdict() == "MISSED"
    assert metrics.Target("rss", 47.0, 60.0, False, "MB").verdict() == "met"
    assert metrics.Target("rss", None, 60.0, False, "MB").verdict() == "not measured"


def test_other_cores_busy_subtracts_this_benchmarks_own_cpu_time():
    start = {"machine_busy_s": 100.0, "own_cpu_s": 5.0, "wall": 1000.0}
    end = {"machine_busy_s": 250.0, "own_cpu_s": 55.0, "wall": 1100.0}
    # 150 busy CPU-seconds in 100 s, 50 of them ours: others kept 1.0 core busy.
    assert metrics.other_cores_busy(start, end) == pytest.approx(1.0)
    assert metrics.other_cores_busy({**start, "machine_busy_s": None}, end) is None


def test_devices_served_and_dig():
    assert metrics.devices_served(250_000.0, 50.0) == 5000.0
    assert metrics.devices_served(None, 50.0) is None
    assert metrics.dig({"a": {"b": 1}}, "a", "b") == 1
    assert metrics.dig({"a": {"error": "x", "b": 1}}, "a", "b") is None
    assert metrics.dig({"a": {}}, "a", "b") is None


# -- ingest payload ----------------------------------------------------------------------------
def test_ingest_payload_lines_parse_as_daemon_samples_per_device_in_time_order():
    from har_runtime.daemon.lines import LineParser

    payload = common.ingest_payload(devices=3, samples_per_device=5, burst=2, channels=3)
    parser = LineParser(("acc_x", "acc_y", "acc_z"))
    samples = [parser.parse(line) for line in payload.splitlines()]
    assert len(samples) == 15
    assert [s.device for s in samples[:4]] == ["dev00000", "dev00000", "dev00001", "dev00001"]
    for device in {s.device for s in samples}:
        times = [s.t for s in samples if s.device == device]
        assert times == pytest.approx([k / 50.0 for k in range(5)])


def test_ingest_payload_with_gyro_has_six_values_and_refuses_zero_counts():
    from har_runtime.daemon.lines import LineParser

    payload = common.ingest_payload(devices=1, samples_per_device=2, burst=1, channels=6)
    parser = LineParser(("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"))
    assert all(len(parser.parse(line).values) == 6 for line in payload.splitlines())
    with pytest.raises(ValueError):
        common.ingest_payload(devices=0, samples_per_device=2, burst=1, channels=3)


# -- the report --------------------------------------------------------------------------------
def _stats(p50):
    return {"n": 100, "p50_ms": p50, "p99_ms": p50 * 2, "mean_ms": p50, "min_ms": p50 / 2}


def _tput(rate):
    return {"batch": 1, "calls": 10, "windows_per_s": rate}


def fake_results(ingest_cpu=60_000.0, keras=True):
    """A results dict shaped like scripts.bench.plan.Plan.run_all's, with round numbers."""
    model = {"interpreter": "tflite_runtime", "invoke": _stats(0.1), "predict": _stats(0.11),
             "stream": _stats(0.3),
             "stream_jitter": _stats(0.12), "throughput_b1": _tput(9000.0),
             "throughput_batch": _tput(20000.0)}
    keras_part = {"models": {"model": {
        "predict": _stats(60.0), "call": _stats(5.0), "throughput_predict_b1": _tput(16.0),
        "throughput_call_b1": _tput(200.0), "throughput_predict_batch": _tput(900.0),
        "throughput_call_batch": _tput(5000.0), "params": 3718, "macs": 393600}}} if keras \
        else {"error": "no Keras model found next to the bundle (pass --keras-model)"}
    subject = {"bundle": "b", "source": "given", "recommended": "int8", "model": "seed_cnn",
               "data": "synthetic:0", "spec": {"window": 128, "channels": ["acc_x"] * 3},
               "keras_note": "k", "keras_model": "k" if keras else None,
               "runtime": {"models": {"int8": model}}, "keras": keras_part,
               "info": {"models": {"int8": {"size_bytes": 9000, "ops": {"CONV_2D": 1},
                                            "macs": 393600, "arena_bytes": 23552}}},
               "onnx": {"error": "no onnx Python given"}}
    machine = {"cpu": "Test CPU", "cores": 2, "affinity": [0, 1], "load_avg": [0.1, 0, 0],
               "kernel": "6", "machine": "x86_64", "machine_busy_s": 10.0, "own_cpu_s": 1.0,
               "wall": 0.0}
    busy_end = {**machine, "machine_busy_s": 30.0, "own_cpu_s": 6.0, "wall": 10.0}
    run = {"devices": 1000, "burst": 50, "samples": 256000, "wall_s": 5.0, "cpu_s": 4.0,
           "samples_per_s": ingest_cpu * 0.8, "samples_per_cpu_s": ingest_cpu,
           "predictions": 3000, "malformed": 0}
    return {"machine_start": machine, "machine_end": busy_end, "command": "python bench.py",
            "quick": True, "elapsed_s": 10.0, "cores": {"measure": 0, "client": 1},
            "subjects": {"main": subject},
            "breakdown": {"error": "skipped"},
            "memory": [{"label": "har_runtime + tflite-runtime", "role": "runtime",
                        "memory": {"vm_hwm_mib": 45.0, "ru_maxrss_mib": 45.0},
                        "predictions": 92, "loaded": ["tflite_runtime"]}],
            "ingest": {"sweep": {"runs": [run], "memory": {"vm_hwm_mib": 50.0}},
                       "interleaved": {"error": "skipped"}, "burst": 50},
            "growth": {"model": "seed_cnn", "error": "no train Python given"},
            "notes": ["ONNX Runtime columns: not measured (no interpreter given)"]}


def test_report_judges_targets_from_the_measurements(tmp_path):
    out = tmp_path / "B.md"
    report.write_markdown(fake_results(), out, None, "matplotlib missing")
    text = out.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| ") and "**" in line}
    assert "**met**" in rows["stream path vs Keras predict (speed-up, p50)"]  # 60 / 0.3 = 200x
    assert "**MISSED**" in rows["stream path / bare invoke (p50), on-grid timestamps"]  # 3x
    assert "**met**" in rows["stream path / bare invoke (p50), timestamps jittered ±0.2 "
                             "period"]  # 0.12 / 0.1 = 1.2x
    assert "**MISSED**" in rows["daemon ingest per core (1000 devices, samples per CPU-s)"]
    assert "**met**" in rows["peak RSS, runtime with tflite-runtime"]
    assert "about **1,200 devices at 50 Hz**" in text
    assert "ONNX Runtime columns: not measured" in text
    assert "- ONNX: unavailable: no onnx Python given" in text
    assert "Plot not written: matplotlib missing" in text
    assert "kept 1.50 of the 2 cores busy on average" in text  # (20 - 5) CPU-s over 10 s
    assert "background load during this run, from /proc/stat minus the benchmark's own CPU " \
        "time: 1.50 cores busy on average" in text


def test_report_judges_the_interleaved_and_fleet_memory_targets(tmp_path):
    res = fake_results()
    worst = {**res["ingest"]["sweep"]["runs"][0], "burst": 1, "samples_per_cpu_s": 120_000.0}
    res["ingest"]["interleaved"] = {"runs": [worst]}
    res["ingest"]["fleet"] = [
        {"runs": [{**worst, "devices": d, "burst": 50}], "memory": {"vm_hwm_mib": mib}}
        for d, mib in ((1000, 60.0), (5000, 130.0))]
    out = tmp_path / "B.md"
    report.write_markdown(res, out, None, "x")
    text = out.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| ") and "**" in line}
    assert "**met**" in rows["daemon ingest per core, every line a different device (1000 "
                             "devices, samples per CPU-s)"]
    assert "**MISSED**" in rows["peak RSS, ingest process serving 5,000 devices (MiB)"]
    fleet = [ln for ln in text.splitlines() if ln.startswith("| 5,000 | 50 |")]
    assert len(fleet) == 1 and fleet[0].rstrip(" |").endswith("130.0")


def test_report_without_fleet_runs_says_not_measured(tmp_path):
    out = tmp_path / "B.md"
    report.write_markdown(fake_results(), out, None, "x")
    line = [ln for ln in out.read_text().splitlines() if "ingest process serving" in ln][0]
    assert "**not measured**" in line


def test_report_marks_keras_columns_unavailable_instead_of_inventing_them(tmp_path):
    out = tmp_path / "B.md"
    report.write_markdown(fake_results(ingest_cpu=300_000.0, keras=False), out, None, "x")
    text = out.read_text()
    assert "| stream path vs Keras predict (speed-up, p50) | >= 20.0x | n/a | **not measured** |" \
        in text
    assert "**met**" in [ln for ln in text.splitlines() if ln.startswith("| daemon ingest")][0]
    keras_row = [ln for ln in text.splitlines() if ln.startswith("| Keras model.predict(x)")][0]
    assert "| n/a | n/a | n/a |" in keras_row


# -- the command and the runtime worker -------------------------------------------------------
def test_cli_refuses_a_folder_without_a_bundle(tmp_path):
    result = CliRunner().invoke(bench.main, ["--bundle", str(tmp_path)])
    assert result.exit_code == 3
    assert "no bundle at" in result.output


def test_latency_task_times_every_golden_variant_and_the_stream_path():
    from scripts.bench import rt as bench_rt

    result = bench_rt.task_latency({"bundle": str(GOLDEN), "n": 20, "batch": 8,
                                    "batch_calls": 5})
    assert set(result["models"]) == {"float32", "float16", "dynamic", "int8"}
    for model in result["models"].values():
        assert model["invoke"]["n"] == model["stream"]["n"] == 20
        for key in ("invoke", "predict", "stream"):
            assert 0 < model[key]["p50_ms"] <= model[key]["p99_ms"]
        assert model["throughput_batch"]["batch"] == 8


def test_loopback_ingest_delivers_every_sample_to_the_engine():
    from scripts.bench import rt as bench_rt

    run = bench_rt.ingest_once({"bundle": str(GOLDEN), "samples": 0, "burst": 50,
                                "timeout_s": 60}, devices=3)
    per_device = 128 + 2 * 64  # the floor ingest_once applies: three windows per device
    assert run["samples"] == 3 * per_device and run["malformed"] == 0
    assert run["predictions"] == 3 * 3


def test_graph_macs_restore_the_dilation_factor_of_space_to_batch_convolutions():
    conv = {"op": "CONV_2D", "output": [1, 1, 32, 64], "weights": [64, 1, 5, 32]}
    dilated = [{"op": "SPACE_TO_BATCH_ND", "output": [2, 32, 32], "weights": [1], "block": 2},
               conv, {"op": "BATCH_TO_SPACE_ND", "output": [1, 64, 64], "weights": [1]},
               conv]
    # Keras: Conv1D(64, 5, dilation 2) on (64, 32) -> (64, 64) is 64 * 64 * 5 * 32 MACs.
    assert metrics.tflite_graph_macs(dilated[:3]) == 64 * 64 * 5 * 32
    # After BATCH_TO_SPACE_ND the factor is gone again.
    assert metrics.tflite_graph_macs(dilated) == 64 * 64 * 5 * 32 + 32 * 64 * 5 * 32
    assert metrics.tflite_graph_macs([{"op": "SOFTMAX", "output": [1, 6], "weights": None}]) == 0


def test_the_report_keeps_the_fleet_benchmarks_section(tmp_path, monkeypatch):
    from scripts.bench import report

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# old report\n\n" + report.FLEET_MARK + "\n## Scale-out\nfigures\n"
                   "<!-- fleet_bench:end -->\n")
    for name in ("section_header", "section_targets", "section_latency", "section_throughput",
                 "section_ingest", "section_breakdown", "section_memory", "section_size",
                 "section_method"):
        monkeypatch.setattr(report, name, lambda res, name=name: [f"## {name}"])
    monkeypatch.setattr(report, "section_growth", lambda *args: ["## growth"])
    report.write_markdown({}, doc, None, None)
    text = doc.read_text()
    assert text.startswith("## section_header") and "# old report" not in text
    assert text.endswith(report.FLEET_MARK + "\n## Scale-out\nfigures\n<!-- fleet_bench:end -->\n")
    report.write_markdown({}, doc, None, None)
    assert text == doc.read_text()
