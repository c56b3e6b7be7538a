"""`har-runtime` through CliRunner: replay, bench, serve from a file, and clean failures."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from har_runtime.bundle import load_bundle
from har_runtime.cli import main
from har_runtime.csvio import write_csv_recording
from har_runtime.exit_codes import ExitCode
from har_runtime.stream import StreamClassifier, offline_windows
from har_train.data.synthetic import synthetic_recording
from test_stream_mock import golden_bundle


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def recording():
    return synthetic_recording(11, seconds_per_activity=12.0, transitions=True)


@pytest.fixture
def csv_file(tmp_path, recording):
    path = tmp_path / "rec.csv"
    write_csv_recording(path, recording)
    return path


def test_replay_prints_timeline_and_accuracy(csv_file, recording):
    bundle_path = golden_bundle()
    result = invoke("replay", bundle_path, csv_file, "--fast")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("subject 11 session 0 (csv:rec.csv)")
    segments = [line.split() for line in lines[1:] if line.endswith(tuple(
        load_bundle(bundle_path).labels + ("unknown",)))]
    assert len(segments) >= 2 and float(segments[0][0]) < float(segments[-1][2])
    # The printed accuracy is the offline path's, scored by the spec's window rule.
    bundle = load_bundle(bundle_path)
    spec = bundle.spec
    sc = StreamClassifier(spec, bundle.open(), bundle.smoothing)
    frames = recording.frames(spec.channels)
    truth = offline_windows(spec, recording.times, frames, recording.labels).labels
    preds = sc.classify_recording(recording.times, frames)
    keep = truth >= 0
    acc = np.mean([p.label == spec.labels[y] for p, y, k in zip(preds, truth, keep) if k])
    assert f"accuracy {acc:.3f} (window)" in result.output
    assert f"over {int(keep.sum())} labelled windows" in result.output


def test_replay_png_when_matplotlib_is_available(csv_file, tmp_path):
    bundle_path = golden_bundle()
    png = tmp_path / "timeline.png"
    result = invoke("replay", bundle_path, csv_file, "--fast", "--png", png)
    assert result.exit_code == 0, result.output
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no PNG written" in result.output and not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replay_at_speed_takes_real_time(csv_file, recording, tmp_path):
    bundle_path = golden_bundle()
    short = recording.__class__(1, 0, 50.0, recording.acc[:100], recording.labels[:100],
                                recording.gyro[:100], "cut")
    write_csv_recording(tmp_path / "short.csv", short)
    import time
    start = time.monotonic()
    result = invoke("replay", bundle_path, tmp_path / "short.csv", "--speed", "4")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start >= 0.45  # 1.98 s of samples at 4x real time


def test_bench_table_and_json():
    bundle_path = golden_bundle()
    names = list(load_bundle(bundle_path).variants)
    result = invoke("bench", bundle_path, "--iterations", 20, "--batch", 8)
    assert result.exit_code == 0, result.output
    header, rule, *rows = result.output.strip().splitlines()
    assert header.split()[:4] == ["variant", "size", "KiB", "p50"]
    assert [r.split()[0] for r in rows] == names
    result = invoke("bench", bundle_path, "--variant", names[0], "--iterations", 20, "--json")
    (entry,) = json.loads(result.output)
    assert entry["variant"] == names[0] and entry["p99_ms"] >= entry["p50_ms"] > 0
    assert entry["throughput_wps"] > 0 and entry["threads"] == 1
    assert entry["context_head"] is None


def test_bench_times_a_learned_context_head_step():
    bundle_path = golden_bundle().parent / "bundle_context"
    result = invoke("bench", bundle_path, "--variant", "int8", "--iterations", 20)
    assert result.exit_code == 0, result.output
    assert "context head: p50 " in result.output.splitlines()[-1]
    result = invoke("bench", bundle_path, "--variant", "int8", "--iterations", 20, "--json")
    (entry,) = json.loads(result.output)
    assert entry["context_head"]["p99_ms"] >= entry["context_head"]["p50_ms"] > 0


def test_serve_file_source_to_file_sink(tmp_path, recording):
    bundle_path = golden_bundle()
    spec = load_bundle(bundle_path).spec
    lines = [",".join(repr(v) for v in (t, *row)) for t, row in
             zip(recording.times, recording.frames(spec.channels))]
    (tmp_path / "in.csv").write_text("t,ax,ay,az\n" + "\n".join(lines))
    out = tmp_path / "out.jsonl"
    (tmp_path / "serve.toml").write_text("stats_interval = 0\n")
    result = invoke("serve", bundle_path, "--source", f"file:{tmp_path / 'in.csv'}",
                    "--sink", f"file:{out}", "--config", tmp_path / "serve.toml")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    n = len(offline_windows(spec, recording.times, recording.frames(spec.channels)).t_end)
    assert sum(e["type"] == "prediction" for e in events) == n
    assert {e["device"] for e in events} == {"file"}


@pytest.mark.parametrize("args, code, message", [
    (["serve", "{missing}"], ExitCode.BAD_MODEL, "bundle.json is missing"),
    (["bench", "{missing}"], ExitCode.BAD_MODEL, "bundle.json is missing"),
    (["replay", "{missing}", "x.csv"], ExitCode.BAD_MODEL, "bundle.json is missing"),
    (["serve", "{bundle}", "--variant", "nope"], ExitCode.BAD_MODEL, "no variant 'nope'"),
    (["bench", "{bundle}", "--variant", "nope"], ExitCode.BAD_MODEL, "no variant 'nope'"),
    (["serve", "{bundle}", "--source", "tcp:1.2.3.4:99999"], ExitCode.IO_FAILED, "out of range"),
    (["serve", "{bundle}", "--sink", "s3:bucket"], ExitCode.IO_FAILED, "unknown sink"),
    (["serve", "{bundle}", "--interpreter", "ai_edge_litert"], ExitCode.NO_INTERPRETER,
     "ai_edge_litert"),
    (["bench", "{bundle}", "--interpreter", "ai_edge_litert"], ExitCode.NO_INTERPRETER,
     "ai_edge_litert"),
    (["replay", "{bundle}", "{garbage}"], ExitCode.BAD_DATA, "garbage.csv:1"),
    (["replay", "{bundle}", "hapt:2"], ExitCode.BAD_DATA,
     "har-train to-csv hapt runs/hapt-2 --subject 2; then"),
    (["replay", "{bundle}", "{header}"], ExitCode.BAD_DATA, "header only"),
    (["replay", "{bundle}", "{rec}", "--fast", "--png", "{missing}/x.png"], ExitCode.IO_FAILED,
     "cannot write"),
    (["serve", "{bundle}", "--threads", "0"], ExitCode.USAGE, "--threads"),
    (["serve", "{bundle}", "--config", "{settings}"], ExitCode.BAD_INPUT, "max_devices"),
])
def test_errors_are_one_line_with_distinct_exit_codes(tmp_path, recording, args, code, message):
    if code == ExitCode.NO_INTERPRETER and _importable("ai_edge_litert"):
        pytest.skip("ai_edge_litert is installed here")
    if "--png" in args and not _importable("matplotlib"):
        pytest.skip("without matplotlib replay writes no PNG (it says so and exits 0)")
    needs_bundle = any("{bundle}" in a for a in args)
    bundle_path = golden_bundle() if needs_bundle else None
    (tmp_path / "garbage.csv").write_text("this is not,a recording\n1,2\n")
    (tmp_path / "header.csv").write_text("timestamp,ax,ay,az\n")
    (tmp_path / "serve.toml").write_text("max_devices = 0\n")
    write_csv_recording(tmp_path / "rec.csv", recording)
    paths = {"missing": tmp_path / "nope", "bundle": bundle_path,
             "garbage": tmp_path / "garbage.csv", "header": tmp_path / "header.csv",
             "rec": tmp_path / "rec.csv", "settings": tmp_path / "serve.toml"}
    result = invoke(*[a.format(**paths) for a in args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert [line.startswith("Error: ") for line in result.output.splitlines()].count(True) == 1


def test_corrupted_bundle_is_refused(tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(golden_bundle(), copy)
    model = next(copy.glob("*.tflite"))
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = invoke("bench", copy)
    assert result.exit_code == ExitCode.BAD_MODEL and "sha256 mismatch" in result.output


def _importable(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


def test_help_lists_the_exit_codes_and_serve_help_stays_short():
    shown = invoke("-h").output
    for code in (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT, ExitCode.BAD_DATA,
                 ExitCode.BAD_MODEL, ExitCode.IO_FAILED, ExitCode.NO_INTERPRETER):
        assert f"  {int(code)}  {code.meaning}" in shown
    assert ExitCode.PARITY_FAILED.meaning not in shown
    assert invoke("--version").output.startswith("har-runtime, version")
    serve = invoke("serve", "--help").output
    flags = {word.rstrip(",") for word in serve.split() if word.startswith("--")}
    assert flags == {"--config", "--source", "--sink", "--variant", "--interpreter", "--threads",
                     "--emit", "--acc-unit", "--gyro-unit", "--time-unit", "--help"}


def test_replay_reads_a_csv_in_other_units_with_the_unit_options(tmp_path, recording, csv_file):
    from dataclasses import replace

    from har_runtime.contract.units import STANDARD_GRAVITY

    converted = replace(recording, acc=recording.acc * STANDARD_GRAVITY,
                        gyro=np.degrees(recording.gyro))
    write_csv_recording(tmp_path / "phone.csv", converted)
    want = invoke("replay", golden_bundle(), csv_file, "--fast")
    naive = invoke("replay", golden_bundle(), tmp_path / "phone.csv", "--fast")
    got = invoke("replay", golden_bundle(), tmp_path / "phone.csv", "--fast",
                 "--acc-unit", "m/s2", "--gyro-unit", "deg/s")
    assert want.exit_code == got.exit_code == 0, got.output
    accuracy = [line for line in want.output.splitlines() if "accuracy" in line]
    assert accuracy and accuracy == [line for line in got.output.splitlines() if "accuracy" in line]
    assert accuracy != [line for line in naive.output.splitlines() if "accuracy" in line]
