"""The restricted unpickler: loads pandas-0.x-style frames, runs nothing it was not told to."""
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from har_train.data.safe_pickle import FrameStub, frame_columns, restricted_load
from har_train.errors import DataError

import legacy_pandas


def _load(data: bytes):
    return restricted_load(io.BytesIO(data), what="test.pkl")


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_os_system_pickle_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps({1: [_SystemCall(marker)]}, protocol=protocol)
    with pytest.raises(DataError, match=r"test\.pkl: .*(posix|os)\.system.* not allowed"):
        _load(data)
    assert not marker.exists()


def test_every_global_outside_the_allow_list_is_refused():
    for obj in (print, open, eval, getattr, np.save, io.BytesIO):
        with pytest.raises(DataError, match="not allowed"):
            _load(pickle.dumps(obj, protocol=2))


def test_copyreg_reconstructor_builds_only_pandas_stubs(tmp_path):
    class Evil:
        def __reduce__(self):
            import copyreg
            return copyreg._reconstructor, (np.ndarray, object, None)
    with pytest.raises(DataError, match=r"numpy\.ndarray"):
        _load(pickle.dumps(Evil(), protocol=2))


def test_ndarray_cannot_be_called_with_a_raw_buffer():
    # ndarray(shape, dtype=object, buffer=...) would turn file bytes into object pointers.
    class Evil:
        def __reduce__(self):
            return np.ndarray, ((1,), np.dtype(object), b"\x01" * 8)
    with pytest.raises(DataError, match="numpy.ndarray"):
        _load(pickle.dumps(Evil(), protocol=2))


def test_object_array_from_raw_bytes_is_refused():
    state = (1, (2,), np.dtype(object), False, b"\x01" * 16)

    class Evil:
        def __reduce__(self):
            return np.zeros(1).__reduce__()[0], (np.ndarray, (0,), b"b"), state
    with pytest.raises(DataError, match="object array"):
        _load(pickle.dumps(Evil(), protocol=2))


def test_structured_dtype_is_refused():
    arr = np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])
    with pytest.raises(DataError, match="unsupported dtype"):
        _load(pickle.dumps(arr, protocol=2))


def test_pickle_cannot_patch_allowed_globals():
    # BUILD with slot state on a global would setattr on it for every later load.
    data = (b"\x80\x02c_codecs\nencode\nq\x00N}q\x01X\x08\x00\x00\x00__call__q\x02Ns\x86q\x03b.")
    pickletools.dis(data, out=io.StringIO())  # a well-formed stream: the refusal is ours
    with pytest.raises(DataError, match="modify"):
        _load(data)


def test_numpy_arrays_round_trip_through_python2_byte_strings():
    values = np.random.default_rng(0).normal(size=(3, 5))
    out = _load(pickle.dumps({"a": values, "b": np.arange(4, dtype=">i4")}, protocol=2))
    np.testing.assert_array_equal(out["a"].array, values)
    assert out["b"].array.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("shuffle", [False, True])
def test_frame_columns_follow_names_and_mgr_locs(shuffle):
    rng = np.random.default_rng(1)
    acc, gyro = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    labels = np.array([-1, 1, 1, 2, 12, 5, -1])
    frame = legacy_pandas.session_frame(acc, gyro, labels, shuffle_blocks=shuffle)
    loaded = _load(legacy_pandas.dumps({1: [frame]}))
    assert isinstance(loaded[1][0], FrameStub)
    columns = frame_columns(loaded[1][0])
    np.testing.assert_array_equal(columns["acc-y"], acc[:, 1])
    np.testing.assert_array_equal(columns["gyro-z"], gyro[:, 2])
    np.testing.assert_array_equal(columns["label"], labels)
    np.testing.assert_array_equal(columns["sequence"], np.arange(7))


def test_truncated_pickle_is_a_data_error():
    data = legacy_pandas.dumps({1: [legacy_pandas.session_frame(
        np.zeros((3, 3)), np.zeros((3, 3)), np.ones(3, dtype=int))]})
    with pytest.raises(DataError, match="corrupt"):
        _load(data[: len(data) // 2])


def test_frame_columns_rejects_other_objects():
    with pytest.raises(DataError, match="not a pandas DataFrame"):
        frame_columns(FrameStub({"x": 1}), "thing")


def test_overflowing_array_shape_is_a_data_error():
    import io

    from har_train.data.safe_pickle import restricted_load
    from har_train.errors import DataError

    # numpy's ndarray reconstruction, then BUILD with shape (2**70,): the product overflows int64.
    data = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85"
            b"c_codecs\nencode\nq\x02X\x01\x00\x00\x00bX\x06\x00\x00\x00latin1\x86Rq\x03\x87Rq\x04"
            b"(K\x01\x8a\x09" + (2 ** 70).to_bytes(9, "little") + b"\x85cnumpy\ndtype\nX\x02\x00"
            b"\x00\x00f8K\x00K\x01\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
            b"K\x00tb\x89C\x00tb.")
    with pytest.raises(DataError, match="crafted"):
        restricted_load(io.BytesIO(data), "crafted")
