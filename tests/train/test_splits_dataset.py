"""Rule 4: splits are by subject; the dataset assembly checks it again on the windows."""
import numpy as np
import pytest

from har_runtime.contract.recording import Recording
from har_train.dataset import build_split_data, fingerprint, make_spec, windows_from_recordings
from har_train.errors import DataError
from har_train.errors import SplitError
from har_train.splits import UCI_TEST_SUBJECTS, SubjectSplit, default_split, kfold_splits


def _rec(subject, label_runs, session=0):
    labels = np.concatenate([np.full(n, lab) for lab, n in label_runs]).astype(np.int64)
    rng = np.random.default_rng(subject * 100 + session)
    return Recording(subject, session, 50.0, rng.normal(size=(len(labels), 3)), labels)


def test_default_split_uses_uci_test_subjects_and_is_disjoint():
    split = default_split(range(1, 31), seed=3)
    assert split.test == UCI_TEST_SUBJECTS
    assert len(split.val) == 3
    assert set(split.train) | set(split.val) | set(split.test) == set(range(1, 31))
    assert default_split(range(1, 31), seed=3) == split


def test_overlapping_split_is_refused():
    with pytest.raises(SplitError, match=r"\[5\].*train and test"):
        SubjectSplit((1, 5), (3,), (5, 7)).check()
    with pytest.raises(SplitError):
        default_split(range(1, 31), val=(2,))  # a test subject cannot validate


def test_kfold_covers_each_non_test_subject_once_in_validation():
    folds = kfold_splits(range(1, 31), k=3)
    seen = [s for f in folds for s in f.val]
    assert sorted(seen) == [s for s in range(1, 31) if s not in UCI_TEST_SUBJECTS]
    for fold in folds:
        assert not set(fold.train) & set(fold.val)
        assert fold.test == UCI_TEST_SUBJECTS


def test_windows_follow_the_pure_label_rule():
    spec = make_spec("har6", window=10, hop=5)
    rec = _rec(1, [(1, 20), (-1, 5), (2, 20), (8, 10)])
    ws = windows_from_recordings([rec], spec)
    # Only windows entirely inside a run of label 1 or 2 survive: starts 0, 5, 10 and 25, 30, 35.
    assert ws.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert set(ws.subject.tolist()) == {1}


def test_hapt12_accepts_majority_windows():
    spec = make_spec("hapt12", window=10, hop=10)
    ws = windows_from_recordings([_rec(1, [(8, 7), (5, 3)])], spec)
    assert ws.y.tolist() == [7]  # label id 8 -> class index 7 at 70 % >= 60 %


def test_split_data_keeps_subjects_apart():
    recs = [_rec(s, [(1 + s % 6, 64)]) for s in (1, 2, 3, 4)]
    data = build_split_data(recs, make_spec(window=16, hop=8), SubjectSplit((1, 3), (4,), (2,)))
    assert set(data.train.subject.tolist()) == {1, 3}
    assert set(data.val.subject.tolist()) == {4}
    assert set(data.test.subject.tolist()) == {2}
    with pytest.raises(DataError, match="no training or no test"):
        build_split_data(recs, make_spec(window=16, hop=8), SubjectSplit((1,), (), (9,)))


def test_train_hop_densifies_training_windows_only():
    recs = [_rec(s, [(1 + s % 6, 64)]) for s in (1, 2, 3, 4)]
    spec, split = make_spec(window=16, hop=8), SubjectSplit((1, 3), (4,), (2,))
    plain = build_split_data(recs, spec, split)
    dense = build_split_data(recs, spec, split, train_hop=2)
    # 64 samples per recording: (64 - 16) / 8 + 1 = 7 windows at hop 8, 25 at hop 2.
    assert len(plain.train) == 14 and len(dense.train) == 50
    every_fourth = np.concatenate([np.arange(0, 25, 4), 25 + np.arange(0, 25, 4)])
    assert np.array_equal(dense.train.x[every_fourth], plain.train.x)
    for side in ("val", "test"):
        assert np.array_equal(getattr(dense, side).x, getattr(plain, side).x)


def test_context_widens_the_input_but_keeps_the_labelled_windows():
    recs = [_rec(s, [(1 + s % 6, 40), (-1, 8), (2, 40)]) for s in (1, 2, 3, 4)]
    split = SubjectSplit((1, 3), (4,), (2,))
    plain = build_split_data(recs, make_spec(window=16, hop=8), split)
    wide_spec = make_spec(window=16, hop=8, context=24)
    assert (wide_spec.window, wide_spec.label_span, wide_spec.input_shape) == (40, 16, (40, 3))
    wide = build_split_data(recs, wide_spec, split)
    # Windows ending before sample 39 have no 24 samples of context: the first three of each
    # recording; of those, the pure-label rule kept the first three (all label 1+s%6).
    for side in ("train", "val", "test"):
        a, b = getattr(plain, side), getattr(wide, side)
        per_rec = len(a) // len(set(a.subject.tolist()))
        keep = np.concatenate([np.arange(3, per_rec) + i * per_rec
                               for i in range(len(a) // per_rec)])
        assert np.array_equal(b.y, a.y[keep]) and np.array_equal(b.subject, a.subject[keep])
        assert np.array_equal(b.x[:, 24:], a.x[keep])


def test_fingerprint_changes_with_any_sample():
    recs = [_rec(1, [(1, 30)]), _rec(2, [(2, 30)])]
    before = fingerprint(recs)
    assert fingerprint(list(reversed(recs))) == before
    recs[1].acc[3, 2] += 1e-9
    assert fingerprint(recs) != before


@pytest.mark.parametrize("source", ["nope", "uci", "csv", "synthetic:x", "synthetic:-1"])
def test_bad_source_strings_raise_data_error(source):
    from har_train.data.sources import load_recordings
    with pytest.raises(DataError):
        load_recordings(source)


def test_synthetic_source_gives_a_usable_default_split():
    from har_train.data.sources import SYNTHETIC_SUBJECTS, load_recordings
    recs = load_recordings("synthetic:0")
    subjects = sorted({r.subject for r in recs})
    assert subjects == list(range(1, SYNTHETIC_SUBJECTS + 1))
    split = default_split(subjects)
    data = build_split_data(recs, make_spec(), split)
    assert len(data.train) and len(data.val) and len(data.test)
    assert set(data.test.subject.tolist()) == {2, 4, 9, 10}


def test_data_without_test_subjects_gets_seeded_picks_never_all():
    from har_train.splits import pick_test

    split = default_split(range(1, 41), test=None, seed=0)
    assert len(split.test) == 8  # 20 % of 40, whichever UCI HAR ids they happen to be
    assert default_split(range(1, 41), test=None, seed=0) == split
    assert len(split.val) == 3 and len(split.train) == 29
    assert pick_test([4, 9]) in ((4,), (9,))
    with pytest.raises(SplitError, match=r"at least 2 subjects, the data has \[0\]"):
        pick_test([0])


def test_a_test_subject_named_for_validation_is_refused_naming_the_data_split():
    with pytest.raises(SplitError, match=r"the test subjects are \[7, 8\], the others \[1, 2, 3\]"):
        default_split([1, 2, 3, 7, 8], test=(7, 8), val=(7,))
