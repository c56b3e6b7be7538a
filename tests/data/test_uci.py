"""UCI HAR directory loader: windows stitched back into the recordings they were cut from."""
import numpy as np
import pytest

from har_train.data.synthetic import synthetic_recording
from har_train.data.uci import load_uci_har_dir
from har_train.errors import DataError

WIDTH, HOP = 128, 64
SIGNALS = ("total_acc", "body_acc", "body_gyro")


def _pure_windows(recording):
    """(start, label) of every window UCI would keep: one activity 1..6 throughout."""
    out = []
    for start in range(0, len(recording) - WIDTH + 1, HOP):
        labels = recording.labels[start:start + WIDTH]
        if labels[0] in range(1, 7) and (labels == labels[0]).all():
            out.append((start, int(labels[0])))
    return out


def write_uci_dir(root, splits):
    """Write recordings in the UCI HAR Dataset layout; return the expected stitched runs.

    `splits` maps split name -> recordings. Each expected run is (subject, recording, start,
    stop) for a stretch of consecutive kept windows.
    """
    expected = []
    for split, recordings in splits.items():
        rows = {f"{s}_{a}": [] for s in SIGNALS for a in "xyz"}
        ys, subjects = [], []
        for rec in recordings:
            body = rec.acc - rec.acc.mean(axis=0)
            data = {"total_acc": rec.acc, "body_acc": body, "body_gyro": rec.gyro}
            windows = _pure_windows(rec)
            for i, (start, label) in enumerate(windows):
                for signal in SIGNALS:
                    for c, axis in enumerate("xyz"):
                        values = data[signal][start:start + WIDTH, c]
                        rows[f"{signal}_{axis}"].append(" ".join(f"{v: .8e}" for v in values))
                ys.append(str(label))
                subjects.append(str(rec.subject))
                if i == 0 or windows[i - 1][0] != start - HOP:
                    expected.append([rec.subject, rec, start, start + WIDTH])
                else:
                    expected[-1][3] = start + WIDTH
        folder = root / split / "Inertial Signals"
        folder.mkdir(parents=True)
        for name, lines in rows.items():
            (folder / f"{name}_{split}.txt").write_text("\n".join("  " + l for l in lines) + "\n")
        (root / split / f"y_{split}.txt").write_text("\n".join(ys) + "\n")
        (root / split / f"subject_{split}.txt").write_text("\n".join(subjects) + "\n")
    return expected


@pytest.fixture
def uci_dir(tmp_path):
    def rec(subject, session):
        return synthetic_recording(subject, session, seed=4, seconds_per_activity=6,
                                   activities=(5, 4, 1, 2), transitions=True)
    root = tmp_path / "UCI HAR Dataset"
    expected = write_uci_dir(root, {"train": [rec(1, 0), rec(1, 1), rec(2, 0)],
                                    "test": [rec(3, 0)]})
    return root, expected


def test_round_trip_gives_back_the_original_samples(uci_dir):
    root, expected = uci_dir
    recordings = load_uci_har_dir(root)
    assert len(recordings) == len(expected) > 8
    sessions = {}
    for got, (subject, rec, start, stop) in zip(recordings, expected):
        assert (got.subject, got.rate_hz, got.source) == (subject, 50.0, "uci")
        assert got.session == sessions.setdefault(subject, 0)
        sessions[subject] += 1
        np.testing.assert_allclose(got.acc, rec.acc[start:stop], rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(got.gyro, rec.gyro[start:stop], rtol=1e-8, atol=1e-9)
        np.testing.assert_array_equal(got.labels, rec.labels[start:stop])


def test_parent_folder_is_accepted(uci_dir):
    root, expected = uci_dir
    assert len(load_uci_har_dir(root.parent)) == len(expected)


def test_a_split_may_be_absent(uci_dir):
    root, expected = uci_dir
    for file in sorted((root / "test").rglob("*"), reverse=True):
        file.unlink() if file.is_file() else file.rmdir()
    (root / "test").rmdir()
    assert {r.subject for r in load_uci_har_dir(root)} == {1, 2}


def _replace_line(path, number, text):
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_missing_file_is_named(uci_dir):
    root, _ = uci_dir
    (root / "train" / "Inertial Signals" / "body_gyro_y_train.txt").unlink()
    with pytest.raises(DataError, match=r"body_gyro_y_train\.txt: missing"):
        load_uci_har_dir(root)


def test_ragged_row_names_file_and_line(uci_dir):
    root, _ = uci_dir
    path = root / "test" / "Inertial Signals" / "total_acc_z_test.txt"
    _replace_line(path, 3, " ".join(["1.0"] * (WIDTH - 1)))
    with pytest.raises(DataError, match=r"total_acc_z_test\.txt:3: 127 values, expected 128"):
        load_uci_har_dir(root)


@pytest.mark.parametrize("token", ["abc", "nan", "1e999"])
def test_bad_value_names_file_and_line(uci_dir, token):
    root, _ = uci_dir
    path = root / "train" / "Inertial Signals" / "body_gyro_x_train.txt"
    _replace_line(path, 5, " ".join(["0.5"] * (WIDTH - 1) + [token]))
    with pytest.raises(DataError, match=rf"body_gyro_x_train\.txt:5: '{token}' is not a finite"):
        load_uci_har_dir(root)


def test_bad_label_and_subject_lines(uci_dir):
    root, _ = uci_dir
    _replace_line(root / "train" / "y_train.txt", 2, "walk")
    with pytest.raises(DataError, match=r"y_train\.txt:2: expected one integer"):
        load_uci_har_dir(root)
    _replace_line(root / "train" / "y_train.txt", 2, "13")
    with pytest.raises(DataError, match=r"y_train\.txt: unknown activity ids \[13\]"):
        load_uci_har_dir(root)


def test_row_count_mismatch_is_named(uci_dir):
    root, _ = uci_dir
    path = root / "train" / "subject_train.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"subject_train\.txt: \d+ rows, but y_train\.txt has"):
        load_uci_har_dir(root)


def test_not_a_uci_folder(tmp_path):
    with pytest.raises(DataError, match="no train/ or test/ folder"):
        load_uci_har_dir(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        load_uci_har_dir(tmp_path / "nope")
