"""CSV recordings: schema checks with file:line errors, units, resampling, gaps, grouping."""
import math

import numpy as np
import pytest

from har_runtime.contract.units import STANDARD_GRAVITY
from har_runtime.contract.labels import HAPT_LABELS
from har_runtime.csvio import (CSVFormatError, named_label_id, read_csv_data,
                               read_csv_recordings, write_csv_recording)
from har_train.data.synthetic import synthetic_recording

GOOD = "timestamp,ax,ay,az,label\n0.00,0,0,1,5\n0.02,0,0,1,5\n0.04,0,0,1,5\n"


def _write(tmp_path, text, name="rec.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("with_gyro", [True, False])
def test_write_then_read_gives_the_same_recording(tmp_path, with_gyro):
    rec = synthetic_recording(3, session=2, seconds_per_activity=4, with_gyro=with_gyro,
                              transitions=True)
    write_csv_recording(tmp_path / "r.csv", rec)
    (got,) = read_csv_recordings(tmp_path / "r.csv")
    assert (got.subject, got.session, got.rate_hz, got.source) == (3, 2, 50.0, "csv:r.csv")
    np.testing.assert_array_equal(got.acc, rec.acc)
    np.testing.assert_array_equal(got.labels, rec.labels)
    if with_gyro:
        np.testing.assert_array_equal(got.gyro, rec.gyro)
    else:
        assert got.gyro is None


BAD = [
    ("", 1, "empty file"),
    ("timestamp,ax,ay\n0,1,2\n", 1, r"missing required columns \['az'\]"),
    ("timestamp,ax,ay,az,gx\n0,1,2,3,4\n", 1, "gyroscope needs all of gx, gy, gz"),
    ("timestamp,ax,ay,az,temp\n0,1,2,3,4\n", 1, r"unknown columns \['temp'\]"),
    ("timestamp,ax,ay,az,ax\n0,1,2,3,4\n", 1, r"duplicate columns \['ax'\]"),
    ("timestamp,ax,ay,az\n", 1, "header only"),
    ("timestamp,ax,ay,az\n0,1,1,1\n0.02,1,abc,1\n", 3, r"column 'ay': 'abc' is not a number"),
    ("timestamp,ax,ay,az\n0,1,1,1\n\n0.02,1,1,nan\n", 4, r"column 'az': 'nan' is not finite"),
    ("timestamp,ax,ay,az\n0,1,1,1\n0.02,inf,1,1\n", 3, r"column 'ax': 'inf' is not finite"),
    ("timestamp,ax,ay,az\n0,1,1,1\n0.02,1,1\n", 3, "3 fields, the header has 4"),
    ("timestamp,ax,ay,az,label\n0,1,1,1,2\n0.02,1,1,1,2.5\n", 3, r"'label': '2.5' is not an int"),
    ("timestamp,ax,ay,az\n0,1,1,1\n0.02,1,1,1\n0.02,1,1,1\n", 4,
     "timestamp 0.02 does not increase"),
    ("timestamp,ax,ay,az\n0,1,1,1\n0.04,1,1,1\n0.02,1,1,1\n", 4, "does not increase"),
    ("timestamp,ax,ay,az,label\n0,1,1,1,2\n0.02,1,1,1,-1\n0.04,1,1,1,99\n", 4,
     "label 99 is not a HAPT id"),
    ("timestamp,ax,ay,az,label\n0,1,1,1,sit\n0.02,1,1,1,-1\n0.04,1,1,1,4\n", 4,
     "'4' is a number, but other rows name classes"),
    ("timestamp,ax,ay,az,split\n0,1,1,1,train\n0.02,1,1,1,holdout\n", 3,
     "column 'split': 'holdout' is not one of train, val, validation, test"),
    ("timestamp,ax,ay,az,subject,split\n0,1,1,1,4,train\n0.02,1,1,1,4,test\n", 3,
     "subject 4 is in split 'test' here but 'train'; a subject belongs to one split"),
]


@pytest.mark.parametrize("text, line, message", BAD)
def test_errors_name_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(CSVFormatError, match=message) as info:
        read_csv_recordings(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"timestamp,ax,ay,az\n0,1,1,1\n0.02,1,\xff\xfe,1\n")
    with pytest.raises(CSVFormatError, match="not UTF-8") as info:
        read_csv_recordings(path)
    assert info.value.line is not None


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(CSVFormatError, match="no such file"):
        read_csv_recordings(tmp_path / "nope.csv")
    with pytest.raises(CSVFormatError, match=r"no \*\.csv files") as info:
        read_csv_recordings(tmp_path)
    assert info.value.line is None


def test_header_is_case_and_space_tolerant_with_bom(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeff Timestamp , AX,ay ,az\n0,1,0,0\n0.02,1,0,0\n".encode("utf-8"))
    (rec,) = read_csv_recordings(path)
    assert len(rec) == 2 and rec.labels.tolist() == [-1, -1] and rec.gyro is None


def test_units_are_converted_to_g_and_rad_per_s(tmp_path):
    text = "timestamp,ax,ay,az,gx,gy,gz\n" + "".join(
        f"{i * 0.02},{STANDARD_GRAVITY},0,{-2 * STANDARD_GRAVITY},180,0,-90\n" for i in range(5))
    (rec,) = read_csv_recordings(_write(tmp_path, text), acc_unit="m/s2", gyro_unit="deg/s")
    np.testing.assert_allclose(rec.acc, np.tile([1.0, 0.0, -2.0], (5, 1)))
    np.testing.assert_allclose(rec.gyro, np.tile([math.pi, 0.0, -math.pi / 2], (5, 1)))
    with pytest.raises(ValueError, match="unknown acc unit"):
        read_csv_recordings(_write(tmp_path, text), acc_unit="furlongs")


def test_irregular_timestamps_are_resampled(tmp_path):
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.uniform(0.005, 0.03, 400))  # ~57 Hz with jitter
    rows = [f"{t!r},{np.sin(t)!r},{2 * t!r},1,{int(t > 4) + 1}\n" for t in times]
    path = _write(tmp_path, "timestamp,ax,ay,az,label\n" + "".join(rows))
    (rec,) = read_csv_recordings(path, rate_hz=25.0)
    grid = times[0] + np.arange(len(rec)) / 25.0
    assert len(rec) == int((times[-1] - times[0]) * 25.0) + 1
    np.testing.assert_allclose(rec.acc[:, 1], 2 * grid, rtol=1e-9)  # linear: interpolated exactly
    np.testing.assert_allclose(rec.acc[:, 0], np.sin(grid), atol=2e-4)
    np.testing.assert_array_equal(rec.labels, np.where(grid > 4, 2, 1))


def test_gaps_split_a_session(tmp_path):
    times = np.r_[np.arange(50) * 0.02, 5.0 + np.arange(30) * 0.02]
    path = _write(tmp_path, "timestamp,ax,ay,az\n" + "".join(f"{t!r},1,0,0\n" for t in times))
    first, second = read_csv_recordings(path, max_gap_s=0.5)
    assert (len(first), len(second)) == (50, 30)
    assert (first.subject, first.session) == (second.subject, second.session) == (0, 0)
    assert len(read_csv_recordings(path, max_gap_s=10.0)) == 1


def test_rows_are_grouped_by_subject_and_session(tmp_path):
    text = "subject,session,timestamp,ax,ay,az\n" + "".join(
        f"{s},{k},{i * 0.02},{s},{k},0\n" for i in range(4) for s, k in [(2, 0), (1, 1), (1, 0)])
    recordings = read_csv_recordings(_write(tmp_path, text))
    assert [(r.subject, r.session, len(r)) for r in recordings] == [(1, 0, 4), (1, 1, 4),
                                                                    (2, 0, 4)]
    assert [r.acc[0, :2].tolist() for r in recordings] == [[1, 0], [1, 1], [2, 0]]


def test_a_folder_reads_every_csv(tmp_path):
    _write(tmp_path, GOOD, "b.csv")
    _write(tmp_path, GOOD.replace(",5\n", ",4\n"), "a.CSV")
    _write(tmp_path, "ignored", "notes.txt")
    recordings = read_csv_recordings(tmp_path)
    assert [(r.source, int(r.labels[0])) for r in recordings] == [("csv:a.CSV", 4),
                                                                  ("csv:b.csv", 5)]


def test_class_names_get_ids_that_depend_on_the_name_alone(tmp_path):
    text = ("timestamp,ax,ay,az,label\n0,1,0,0,Standing\n0.02,1,0,0, standing\n"
            "0.04,1,0,0,\n0.06,1,0,0,-1\n0.08,1,0,0,cycling\n")
    data = read_csv_data(_write(tmp_path, text), rate_hz=50.0)
    standing, cycling = named_label_id("standing"), named_label_id("cycling")
    assert data.recordings[0].labels.tolist() == [standing, standing, -1, -1, cycling]
    assert data.label_names == {standing: "standing", cycling: "cycling"}
    assert min(standing, cycling) > max(HAPT_LABELS)
    # Another file naming only one of the classes agrees on its id (replay reads one file).
    only = _write(tmp_path, "timestamp,ax,ay,az,label\n0,1,0,0,cycling\n0.02,1,0,0,cycling\n",
                  "other.csv")
    assert read_csv_recordings(only)[0].labels.tolist() == [cycling, cycling]


def test_names_and_ids_in_one_folder_are_refused(tmp_path):
    _write(tmp_path, "timestamp,ax,ay,az,label\n0,1,0,0,walk\n", "a.csv")
    _write(tmp_path, "timestamp,ax,ay,az,label\n0,1,0,0,5\n", "b.csv")
    with pytest.raises(CSVFormatError, match="integer ids, but a.csv names its classes") as info:
        read_csv_data(tmp_path, rate_hz=50.0)
    assert info.value.path.endswith("b.csv")


def test_names_round_trip_through_write_csv_recording(tmp_path):
    path = _write(tmp_path, "timestamp,ax,ay,az,label\n0,1,0,0,walk\n0.02,1,0,0,\n"
                            "0.04,1,0,0,walk\n")
    data = read_csv_data(path, rate_hz=50.0)
    write_csv_recording(tmp_path / "copy.csv", data.recordings[0], data.label_names)
    assert "walk" in (tmp_path / "copy.csv").read_text()
    again = read_csv_data(tmp_path / "copy.csv", rate_hz=50.0)
    np.testing.assert_array_equal(again.recordings[0].labels, data.recordings[0].labels)


def test_split_column_assigns_each_subject_a_side(tmp_path):
    rows = "".join(f"{i * 0.1},1,0,0,{s},{side}\n" for i in range(3)
                   for s, side in [(1, "train"), (2, "Validation"), (3, "test")])
    _write(tmp_path, "timestamp,ax,ay,az,subject,split\n" + rows, "a.csv")
    assert read_csv_data(tmp_path).splits == {1: "train", 2: "val", 3: "test"}
    _write(tmp_path, "timestamp,ax,ay,az,subject,split\n0,1,0,0,3,train\n", "b.csv")
    with pytest.raises(CSVFormatError, match="subject 3 is in split 'train' here but 'test' "
                                             "in a.csv") as info:
        read_csv_data(tmp_path)
    assert info.value.path.endswith("b.csv")


@pytest.mark.parametrize("step, rate", [(0.1, 10.0), (0.0201, 50.0), (0.08, 12.5)])
def test_without_a_rate_the_files_own_rate_is_used(tmp_path, step, rate):
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.normal(step, step / 50, 200))
    text = "timestamp,ax,ay,az\n" + "".join(f"{t!r},1,0,0\n" for t in times)
    data = read_csv_data(_write(tmp_path, text))
    assert data.rate_hz == rate and data.recordings[0].rate_hz == rate
    assert read_csv_recordings(_write(tmp_path, text))[0].rate_hz == 50.0  # the runtime's API
