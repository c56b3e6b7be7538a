"""Data sources: what the data says about its rate, classes and split (SourceData)."""
import pytest

from har_runtime.csvio import named_label_id
from har_train.data.sources import SourceData, load_source
from har_train.errors import DataError
from har_train.splits import UCI_TEST_SUBJECTS


def _csv(folder, rows, header="timestamp,ax,ay,az,label,subject,split"):
    folder.mkdir(exist_ok=True)
    (folder / "a.csv").write_text(header + "\n" + "".join(rows))
    return f"csv:{folder}"


def _rows(subject, split, label="walk", n=5):
    return [f"{i * 0.1:.1f},1,0,0,{label},{subject},{split}\n" for i in range(n)]


def test_built_in_sources_keep_hapt_ids_and_uci_test_subjects():
    data = load_source("synthetic:0")
    assert (data.rate_hz, data.named, data.test) == (50.0, False, UCI_TEST_SUBJECTS)
    assert data.label_names[5] == "standing"
    assert SourceData.of(data.recordings).test == UCI_TEST_SUBJECTS
    with pytest.raises(DataError, match="--acc-unit m/s2 applies to csv: data only"):
        load_source("synthetic:0", acc_unit="m/s2")
    assert load_source("synthetic:0", rate_hz=50.0).rate_hz == 50.0


def test_a_csv_split_column_gives_the_test_and_validation_subjects(tmp_path):
    source = _csv(tmp_path / "d", _rows(1, "train") + _rows(2, "test") + _rows(3, "val")
                  + _rows(4, "test", "sit"))
    data = load_source(source)
    assert (data.test, data.val, data.named, data.rate_hz) == ((2, 4), (3,), True, 10.0)
    assert data.label_names == {named_label_id("walk"): "walk", named_label_id("sit"): "sit"}
    assert data.split_from == "the CSV's split column"
    assert load_source(source, rate_hz=20.0).recordings[0].rate_hz == 20.0


def test_csv_without_a_split_column_leaves_the_test_subjects_to_pick(tmp_path):
    rows = [r.rsplit(",", 1)[0] + "\n" for r in _rows(1, "") + _rows(2, "")]
    data = load_source(_csv(tmp_path / "d", rows, "timestamp,ax,ay,az,label,subject"))
    assert (data.test, data.val) == (None, None)


def test_a_split_column_without_test_rows_is_refused(tmp_path):
    with pytest.raises(DataError, match="names no test subjects"):
        load_source(_csv(tmp_path / "d", _rows(1, "train") + _rows(2, "val")))
