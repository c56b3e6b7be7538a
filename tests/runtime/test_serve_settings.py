"""`har-runtime serve --config FILE.toml`: values applied, flags override, bad files refused."""
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from har_runtime.bundle import load_bundle
from har_runtime.cli import main
from har_runtime.daemon.engine import EngineSettings
from har_runtime.daemon.settings import (KEYS, ServeSettings, SettingsError, load_settings,
                                         settings_from, tomllib)
from har_runtime.exit_codes import ExitCode
from har_runtime.stream import offline_windows
from har_train.data.synthetic import synthetic_recording
from test_stream_mock import golden_bundle

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "scripts" / "har-runtime.toml"


@pytest.fixture(scope="module")
def recording_lines():
    """A recording as CSV sample lines in g and in m/s2, and how many windows it makes."""
    rec = synthetic_recording(5, seconds_per_activity=8.0, transitions=True)
    spec = load_bundle(golden_bundle()).spec
    frames = rec.frames(spec.channels)

    def csv(scale):
        return "\n".join(",".join(repr(v) for v in (t, *(row * scale))) for t, row in
                         zip(rec.times, frames))

    return csv(1.0), csv(9.80665), len(offline_windows(spec, rec.times, frames).t_end)


def serve(tmp_path, settings: str, *flags):
    (tmp_path / "serve.toml").write_text(settings)
    return CliRunner().invoke(main, ["serve", str(golden_bundle()), "--config",
                                     str(tmp_path / "serve.toml"), *map(str, flags)])


def events(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_values_are_applied(tmp_path, recording_lines):
    in_g, in_ms2, _ = recording_lines
    (tmp_path / "g.csv").write_text(in_g)
    (tmp_path / "ms2.csv").write_text(in_ms2)
    plain = serve(tmp_path, "stats_interval = 0\n", "--source", f"file:{tmp_path / 'g.csv'}",
                  "--sink", f"file:{tmp_path / 'g.jsonl'}", "--emit", "changes")
    assert plain.exit_code == ExitCode.OK, plain.output
    from_file = serve(tmp_path, f'source = "file:{tmp_path / "ms2.csv"}"\n'
                                f'sink = "file:{tmp_path / "ms2.jsonl"}"\n'
                                'emit = "changes"\nacc_unit = "m/s2"\nstats_interval = 0\n')
    assert from_file.exit_code == ExitCode.OK, from_file.output
    changes = [(e["type"], e["t"], e["current"]) for e in events(tmp_path / "ms2.jsonl")]
    assert len(changes) >= 2 and {kind for kind, _, _ in changes} == {"change"}
    assert changes == [(e["type"], e["t"], e["current"]) for e in events(tmp_path / "g.jsonl")]


def test_flags_given_on_the_command_line_override_the_file(tmp_path, recording_lines):
    _, text, n = recording_lines
    (tmp_path / "in.csv").write_text(text)
    result = serve(tmp_path, 'source = "file:/nonexistent"\nemit = "changes"\n'
                             'acc_unit = "m/s2"\nstats_interval = 0\n',
                   "--source", f"file:{tmp_path / 'in.csv'}", "--emit", "all",
                   "--sink", f"file:{tmp_path / 'out.jsonl'}")
    assert result.exit_code == ExitCode.OK, result.output
    assert sum(e["type"] == "prediction" for e in events(tmp_path / "out.jsonl")) == n


def test_settings_feed_the_engine_and_the_smoothing(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('max_devices = 3\ndevice_policy = "refuse"\ngyro_unit = "deg/s"\n'
                    "smoothing_k = 5\nmin_confidence = 0\n")
    settings = load_settings(path)
    assert settings.engine() == EngineSettings(gyro_unit="deg/s", max_devices=3,
                                               device_policy="refuse")
    smoothing = settings.smoothing()
    assert (smoothing.k, smoothing.min_confidence, smoothing.hysteresis) == (5, 0.0, None)
    assert isinstance(settings.min_confidence, float)
    assert load_settings(None) == ServeSettings()


@pytest.mark.parametrize("text, message", [
    ("max_device = 3\n", "unknown key 'max_device' (did you mean 'max_devices'?)"),
    ("[engine]\nmax_devices = 3\n", "unknown key 'engine'"),
    ('threads = "2"\n', "threads must be an integer, got '2'"),
    ("max_line = true\n", "max_line must be an integer, got True"),
    ("stats_interval = [1]\n", "stats_interval must be a number"),
    ("acc_unit = 9.81\n", "acc_unit must be a string"),
    ("max_devices = 0\n", "max_devices: 0 is not in the range x>=1"),
    ("max_connections = 5000\n", "max_connections: 5000 is not in the range"),
    ("min_confidence = 1.5\n", "min_confidence: 1.5 is not in the range"),
    ("stats_interval = nan\n", "stats_interval must be finite"),
    ('device_policy = "lru"\n', "device_policy: 'lru' is not one of 'evict', 'refuse'"),
    ("max_devices = \n", "not a TOML file"),
])
def test_each_kind_of_bad_file_is_a_one_line_input_error(tmp_path, text, message):
    result = serve(tmp_path, text)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert str(tmp_path / "serve.toml") in result.output and message in result.output


def test_unreadable_files_are_input_errors(tmp_path):
    missing = CliRunner().invoke(main, ["serve", str(golden_bundle()), "--config",
                                        str(tmp_path / "none.toml")])
    assert missing.exit_code == ExitCode.BAD_INPUT and "cannot read" in missing.output
    (tmp_path / "latin1.toml").write_bytes(b'sink = "file:caf\xe9"\n')
    binary = CliRunner().invoke(main, ["serve", str(golden_bundle()), "--config",
                                       str(tmp_path / "latin1.toml")])
    assert binary.exit_code == ExitCode.BAD_INPUT and "not a TOML file" in binary.output


JUNK = st.one_of(st.integers(-2**70, 2**70), st.floats(), st.text(max_size=20), st.booleans(),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                      st.integers(), max_size=2))


@given(st.dictionaries(st.one_of(st.sampled_from(sorted(KEYS)), st.text(max_size=12)), JUNK,
                       max_size=6))
def test_any_parsed_file_gives_settings_or_a_one_line_error(values):
    try:
        settings = settings_from(values, "f.toml")
    except SettingsError as exc:
        assert str(exc).startswith("f.toml: ") and "\n" not in str(exc)
        assert any(repr(key) in str(exc) or f" {key}" in str(exc) for key in values)
    else:
        assert all(getattr(settings, key) == value for key, value in values.items())
        settings.engine()
        settings.smoothing()


def test_the_example_file_loads_and_shows_every_key_with_its_default():
    settings = load_settings(EXAMPLE)
    text = EXAMPLE.read_text()
    for key in fields(ServeSettings):
        assert re.search(rf"^(# )?{key.name} = ", text, re.M), key.name
        if key.name not in ("source", "sink"):
            assert getattr(settings, key.name) == key.default, key.name
    assert settings.source == "tcp:127.0.0.1:8765"
    assert settings.sink == "file:/var/log/har-edge/events.jsonl"


def test_runtime_doc_lists_every_key_with_its_default_and_its_example_loads():
    doc = (REPO / "docs" / "RUNTIME.md").read_text()
    (example,) = re.findall(r"^```toml\n(.*?)^```", doc, re.M | re.S)
    assert settings_from(tomllib.loads(example), "RUNTIME.md") != ServeSettings()
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", doc, re.M))
    for key in fields(ServeSettings):
        assert key.name in rows, key.name
        shown = rows[key.name].strip().strip("`")
        if key.default is not None:
            assert shown == str(key.default), (key.name, shown)
