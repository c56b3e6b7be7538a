"""`har-runtime serve` options of the hardened daemon (CliRunner, golden bundle), and hints."""
import json
from pathlib import Path

import numpy as np
import pytest

from har_runtime.bundle import load_bundle
from har_runtime.exit_codes import ExitCode
from har_runtime.stream import offline_windows
from har_train.data.synthetic import synthetic_recording
from test_cli_runtime import invoke
from test_stream_mock import golden_bundle

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


def test_serve_reads_unix_milliseconds_with_time_unit_ms_and_hints_without(tmp_path):
    bundle = golden_bundle()
    spec = load_bundle(bundle).spec
    rec = synthetic_recording(3, seconds_per_activity=6.0)
    t_ms = 1_700_000_000_000 + np.round((rec.times - rec.times[0]) * 1000.0)
    frames = rec.frames(spec.channels)
    (tmp_path / "phone.csv").write_text("".join(
        f"{int(t)},{','.join(map(repr, row))}\n" for t, row in zip(t_ms, frames)))
    n = len(offline_windows(spec, t_ms / 1000.0, frames).t_end)
    (tmp_path / "serve.toml").write_text("stats_interval = 0\n")
    for unit, want in (("s", 0), ("ms", n)):
        out = tmp_path / f"{unit}.jsonl"
        result = invoke("serve", bundle, "--source", f"file:{tmp_path / 'phone.csv'}",
                        "--sink", f"file:{out}", "--config", tmp_path / "serve.toml",
                        "--time-unit", unit)
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() \
            else []
        assert sum(e["type"] == "prediction" for e in events) == want
        final = json.loads(result.stderr.splitlines()[-1])
        assert final["event"] == "final"
        if unit == "s":
            assert final["nonfinite"] == len(t_ms) and "--time-unit s" in final["hint"]
        else:
            assert "hint" not in final


def test_a_bad_time_unit_flag_is_a_usage_error():
    result = invoke("serve", golden_bundle(), "--time-unit", "min")
    assert result.exit_code == ExitCode.USAGE and "--time-unit" in result.output


@pytest.mark.parametrize("line, key", [("time_unit = 'min'", "time_unit"),
                                       ("idle_timeout_s = -1", "idle_timeout_s"),
                                       ("max_per_address = 0", "max_per_address")])
def test_bad_new_serve_settings_are_bad_input(tmp_path, line, key):
    (tmp_path / "serve.toml").write_text(line + "\n")
    result = invoke("serve", golden_bundle(), "--config", tmp_path / "serve.toml")
    assert result.exit_code == ExitCode.BAD_INPUT and key in result.output


def test_no_runtime_message_asks_for_the_training_dataset_package():
    # pip-installing it into a runtime venv upgrades numpy and breaks the interpreter (issue 22).
    for path in RUNTIME.rglob("*.py"):
        assert "kcc2020" not in path.read_text(encoding="utf-8").lower(), path
    result = invoke("replay", golden_bundle(), "hapt:2")
    assert result.exit_code == ExitCode.BAD_DATA and "pip install" not in result.output
    assert "har-train to-csv hapt runs/hapt-2 --subject 2" in result.output
