"""A restricted unpickler for the legacy pandas pickle that ships the HAPT dataset.

Unpickling runs whatever callables a file names, so a plain `pickle` load of a downloaded file is
remote code execution. This unpickler resolves only the globals a pandas DataFrame pickle written
by Python 2 needs, and maps each to something inert:

* pandas classes become stub objects that only keep their pickled state (pandas is never
  imported); `copy_reg._reconstructor` and `_new_Index` may instantiate nothing but those stubs;
* numpy arrays and dtypes are rebuilt by this module from validated plain data: numeric dtypes
  from raw bytes whose length must match the shape, object arrays only from a list. numpy's own
  `ndarray`/`_reconstruct` are never handed to the pickle, because `ndarray(..., buffer=...)`
  with an object dtype turns file bytes into object pointers;
* `_codecs.encode` only does the latin-1 step of Python 2 byte strings; `slice` is itself.

Every global is an immutable handle, so a pickle cannot patch them for later loads either. Any
other global raises `DataError` before anything is called.
"""
from __future__ import annotations

import codecs
import pickle
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from har_train.errors import DataError

_DTYPE_KINDS = "biufcO"


class PickledState:
    """An inert stand-in for a pickled class: it stores the state it is given and nothing else."""

    def __init__(self, state: Any = None) -> None:
        self.state = state

    def __setstate__(self, state: Any) -> None:
        self.state = state


class FrameStub(PickledState):
    """pandas.core.frame.DataFrame."""


class BlockManagerStub(PickledState):
    """pandas.core.internals.managers.BlockManager."""


class IndexStub(PickledState):
    """pandas.core.indexes.base.Index."""


class RangeIndexStub(PickledState):
    """pandas.core.indexes.range.RangeIndex."""


class DtypeStub(PickledState):
    """A numpy dtype as pickled: (spec, align, copy) plus its BUILD state; see `resolve`."""

    def __init__(self, spec: Any = None) -> None:
        super().__init__()
        self.spec = spec

    def resolve(self) -> np.dtype:
        """The dtype, if it is a plain numeric or object dtype (no fields, no sub-arrays)."""
        state = self.state if isinstance(self.state, tuple) else ()
        order = state[1] if len(state) > 1 else "|"
        extras = [x for x in state[2:5] if x is not None]
        try:
            dtype = np.dtype(self.spec) if isinstance(self.spec, str) else None
        except (TypeError, ValueError, SyntaxError):
            dtype = None
        if dtype is None or dtype.kind not in _DTYPE_KINDS or dtype.fields is not None \
                or dtype.subdtype is not None or extras or order not in ("<", ">", "|", "="):
            raise DataError(f"pickled array has an unsupported dtype {self.spec!r}")
        return dtype.newbyteorder(order) if order in "<>" and dtype.itemsize > 1 else dtype


class ArrayStub(PickledState):
    """A numpy array rebuilt from its pickled state by `__setstate__`; the result is `array`."""

    array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 4:
            state = (1,) + state
        if not isinstance(state, tuple) or len(state) != 5 or not isinstance(state[2], DtypeStub):
            raise DataError("pickled array has an unexpected state")
        _, shape, dtype_stub, fortran, raw = state
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise DataError(f"pickled array has an invalid shape {shape!r}")
        dtype = dtype_stub.resolve()
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        order = "F" if fortran else "C"
        if dtype.kind == "O":
            if not isinstance(raw, list) or len(raw) != count:
                raise DataError("pickled object array is not a list of the right length")
            flat = np.empty(count, dtype=object)
            flat[:] = raw
            self.array = flat.reshape(shape, order=order)
            return
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, bytes) or len(raw) != count * dtype.itemsize:
            raise DataError(f"pickled array data does not fit shape {shape} of {dtype}")
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy()


class _Global:
    """An allow-listed global as the pickle sees it: an immutable handle it may call, or not."""

    __slots__ = ("name", "_call")

    def __init__(self, name: str, call: Optional[Callable[..., Any]] = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_call", call)

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            raise DataError(f"pickle calls {self.name}, which is only allowed as an argument")
        return self._call(*args)

    def __setattr__(self, key: str, value: Any) -> None:
        raise DataError(f"pickle tries to modify {self.name}; refused")

    __delattr__ = __setattr__


_OBJECT = _Global("object")
_NDARRAY = _Global("numpy.ndarray")
_DATAFRAME = _Global("pandas DataFrame")
_BLOCK_MANAGER = _Global("pandas BlockManager")
_INDEX = _Global("pandas Index")
_RANGE_INDEX = _Global("pandas RangeIndex")
_STUBS = {_DATAFRAME: FrameStub, _BLOCK_MANAGER: BlockManagerStub, _INDEX: IndexStub,
          _RANGE_INDEX: RangeIndexStub}


def _reconstructor(cls: Any, base: Any, state: Any) -> PickledState:
    """copy_reg._reconstructor, limited to creating a pandas stub from `object`."""
    if cls not in _STUBS or base is not _OBJECT or state is not None:
        raise DataError(f"pickle asks copy_reg to construct {getattr(cls, 'name', cls)!r}; refused")
    return _STUBS[cls]()


def _new_index(cls: Any, data: Any) -> PickledState:
    """pandas' _new_Index(cls, d): a stub index holding the constructor arguments."""
    if cls not in (_INDEX, _RANGE_INDEX) or not isinstance(data, dict):
        raise DataError("pickle calls _new_Index with an unexpected class; refused")
    return _STUBS[cls](data)


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """_codecs.encode, limited to the latin-1 text -> bytes step of Python 2 byte strings."""
    if not isinstance(text, str) or str(encoding).lower() not in ("latin1", "latin-1"):
        raise DataError(f"pickle calls _codecs.encode with encoding {encoding!r}; refused")
    return codecs.encode(text, "latin1")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> ArrayStub:
    """numpy's _reconstruct(ndarray, shape, dtype), for plain ndarrays only."""
    if subtype is not _NDARRAY:
        raise DataError("pickle reconstructs an ndarray subclass; refused")
    return ArrayStub()


def _dtype(spec: Any, align: Any = 0, copy: Any = 1) -> DtypeStub:
    """numpy.dtype(spec, align, copy), deferred until the array is built."""
    return DtypeStub(spec)


_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("pandas.core.frame", "DataFrame"): _DATAFRAME,
    ("pandas.core.internals.managers", "BlockManager"): _BLOCK_MANAGER,
    ("pandas.core.indexes.base", "Index"): _INDEX,
    ("pandas.core.indexes.range", "RangeIndex"): _RANGE_INDEX,
    ("pandas.core.indexes.base", "_new_Index"): _Global("_new_Index", _new_index),
    ("_codecs", "encode"): _Global("_codecs.encode", _encode),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Global("numpy.dtype", _dtype),
}
# numpy 2 renamed numpy.core to numpy._core; Python 2 and 3 spell the builtins differently.
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _Global("numpy _reconstruct", _reconstruct)
for _module in ("__builtin__", "builtins"):
    _ALLOWED[(_module, "object")] = _OBJECT
    _ALLOWED[(_module, "slice")] = slice
for _module in ("copy_reg", "copyreg"):
    _ALLOWED[(_module, "_reconstructor")] = _Global("copy_reg._reconstructor", _reconstructor)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the allow-listed globals (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"pickle references {module}.{name}, which is not allowed; "
                            "refusing to load it") from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError("pickle uses persistent ids, which are not allowed; refusing to load it")


def restricted_load(stream: Any, what: str = "pickle") -> Any:
    """Unpickle `stream` (a binary file object) with `RestrictedUnpickler`.

    Python 2 byte strings are decoded as latin-1, the encoding that round-trips numpy's Python 2
    array data. Any failure becomes a one-line `DataError` that starts with `what`.
    """
    try:
        return RestrictedUnpickler(stream, encoding="latin1").load()
    except DataError as exc:
        raise DataError(f"{what}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, RecursionError, OverflowError) as exc:
        raise DataError(f"{what}: corrupt or unsupported pickle "
                        f"({type(exc).__name__}: {exc})") from None


def frame_columns(frame: Any, what: str = "DataFrame") -> Dict[str, np.ndarray]:
    """The columns of a pickled pandas DataFrame stub (block-manager layout), by name.

    Columns are assembled from each block's `mgr_locs` and the column Index, so the order and
    grouping of the blocks does not matter.
    """
    try:
        layout = next(iter(frame.state["_data"].state[3].values()))
        names = [str(n) for n in _array(layout["axes"][0].state["data"], what)]
        blocks = [(_array(b["values"], what), b["mgr_locs"]) for b in layout["blocks"]]
    except (AttributeError, KeyError, IndexError, TypeError, StopIteration):
        raise DataError(f"{what} is not a pandas DataFrame pickle") from None
    columns: Dict[str, np.ndarray] = {}
    for values, locs in blocks:
        positions = _block_positions(locs, len(names), what)
        if values.ndim != 2 or values.shape[0] != len(positions):
            raise DataError(f"{what}: a block of shape {values.shape} does not match its columns")
        for row, pos in enumerate(positions):
            columns[names[pos]] = values[row]
    lengths = {v.shape[0] for v in columns.values()}
    if len(columns) != len(names) or len(lengths) > 1:
        raise DataError(f"{what}: blocks cover {len(columns)} of {len(names)} columns "
                        f"with lengths {sorted(lengths)}")
    return columns


def _array(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, ArrayStub) or value.array is None:
        raise DataError(f"{what}: expected a numpy array, found {type(value).__name__}")
    return value.array


def _block_positions(locs: Any, n_columns: int, what: str) -> List[int]:
    """Column positions of one block; pandas pickles them as a slice or an integer array."""
    if isinstance(locs, slice):
        return list(range(n_columns)[locs])
    positions = _array(locs, what).reshape(-1)
    if positions.dtype.kind not in "iu" or np.any((positions < 0) | (positions >= n_columns)):
        raise DataError(f"{what}: a block has invalid column positions")
    return [int(p) for p in positions]
