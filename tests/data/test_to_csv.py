"""`har-train to-csv`: a training data source written in the CSV schema the runtime replays."""
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from har_runtime.cli import main as runtime_main
from har_runtime.csvio import read_csv_recordings
from har_train.cli import cli
from har_train.data.sources import load_recordings

GOLDEN_BUNDLE = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"


def test_subject_round_trips_through_csv(tmp_path):
    result = CliRunner().invoke(cli, ["to-csv", "synthetic:3", str(tmp_path), "--subject", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 1 recording(s)" in result.output
    [want] = [r for r in load_recordings("synthetic:3") if r.subject == 2]
    [got] = read_csv_recordings(tmp_path, rate_hz=want.rate_hz)
    assert (got.subject, got.session) == (want.subject, want.session)
    np.testing.assert_allclose(got.acc, want.acc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.gyro, want.gyro, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.labels, want.labels)


def test_written_folder_replays_in_the_runtime(tmp_path):
    assert CliRunner().invoke(cli, ["to-csv", "synthetic", str(tmp_path),
                                    "--subject", "4"]).exit_code == 0
    result = CliRunner().invoke(runtime_main, ["replay", str(GOLDEN_BUNDLE), str(tmp_path),
                                               "--fast"])
    assert result.exit_code == 0, result.output
    assert "labelled windows" in result.output


def test_missing_subject_is_a_data_error(tmp_path):
    result = CliRunner().invoke(cli, ["to-csv", "synthetic", str(tmp_path), "--subject", "99"])
    assert result.exit_code == 4
    assert "has no subject 99" in result.output
    assert not list(tmp_path.glob("*.csv"))


def test_a_csv_source_with_class_names_keeps_them(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rows = "".join(f"{i * 0.1:.1f},1,0,0,{'walk' if i < 5 else 'sit'},3\n" for i in range(10))
    (src / "a.csv").write_text("timestamp,ax,ay,az,label,subject\n" + rows)
    result = CliRunner().invoke(cli, ["to-csv", f"csv:{src}", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "s03_e00.csv").read_text()
    assert ",walk,3," in text and ",sit,3," in text
    [again] = load_recordings(f"csv:{tmp_path / 'out'}")
    [first] = load_recordings(f"csv:{src}")
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.rate_hz == first.rate_hz == 10.0


def test_a_session_split_by_gaps_is_written_one_file_per_stretch(tmp_path):
    from har_runtime.csvio import write_csv_recording

    [rec] = [r for r in load_recordings("synthetic:1") if r.subject == 3]
    gapped = tmp_path / "gapped.csv"
    write_csv_recording(gapped, rec)
    rows = gapped.read_text().splitlines()
    # A 10 s jump in the timestamps halfway makes two recordings of one (subject, session).
    half = len(rows) // 2
    shifted = [",".join([repr(float(r.split(",")[0]) + 10.0)] + r.split(",")[1:])
               for r in rows[half:]]
    gapped.write_text("\n".join(rows[:half] + shifted) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["to-csv", f"csv:{gapped}", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == ["s03_e00.csv", "s03_e00_2.csv"]
    assert len(read_csv_recordings(out, rate_hz=rec.rate_hz)) == 2
