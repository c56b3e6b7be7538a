"""Write pickles shaped like the HAPT file (pandas DataFrames pickled by Python 2) without pandas.

Fake `pandas.*` modules are put in sys.modules only while pickling, so the stream names the same
globals the real file does (`copy_reg._reconstructor`, `pandas.core.frame.DataFrame`, numpy's
`_reconstruct` with `_codecs.encode` byte strings, ...).
"""
import copyreg
import gzip
import pickle
import sys
import types
from contextlib import contextmanager

import numpy as np


class DataFrame:
    def __init__(self, manager):
        self.manager = manager

    def __reduce__(self):
        return copyreg._reconstructor, (DataFrame, object, None), {
            "_data": self.manager, "_typ": "dataframe", "_metadata": [], "attrs": {}}


class BlockManager:
    def __init__(self, names, blocks, n):
        self.names, self.blocks, self.n = names, blocks, n

    def __reduce__(self):
        columns = _new_Index(Index, {"data": np.array(self.names, dtype=object), "name": None})
        rows = _new_Index(RangeIndex, {"name": None, "start": 0, "stop": self.n, "step": 1})
        layout = {"axes": [columns, rows],
                  "blocks": [{"values": v, "mgr_locs": locs} for v, locs in self.blocks]}
        return copyreg._reconstructor, (BlockManager, object, None), (
            [columns, rows], [v for v, _ in self.blocks], [], {"0.14.1": layout})


class Index:
    pass


class RangeIndex:
    pass


class _IndexValue:
    def __init__(self, cls, data):
        self.cls, self.data = cls, data

    def __reduce__(self):
        return _new_Index, (self.cls, self.data)


def _new_Index(cls, data):
    return _IndexValue(cls, data)


_MODULES = {
    "pandas.core.frame": {"DataFrame": DataFrame},
    "pandas.core.internals.managers": {"BlockManager": BlockManager},
    "pandas.core.indexes.base": {"Index": Index, "_new_Index": _new_Index},
    "pandas.core.indexes.range": {"RangeIndex": RangeIndex},
}


@contextmanager
def fake_pandas():
    saved = {name: sys.modules.get(name) for name in _all_module_names()}
    try:
        for name in _all_module_names():
            sys.modules[name] = types.ModuleType(name)
        for name, members in _MODULES.items():
            for attr, obj in members.items():
                setattr(sys.modules[name], attr, obj)
                obj.__module__ = name
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _all_module_names():
    names = set()
    for name in _MODULES:
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(names)


def session_frame(acc, gyro, labels, shuffle_blocks=False):
    """A DataFrame like one HAPT session: float block (6, n) + int block (sequence, label)."""
    n = len(labels)
    names = ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label"]
    floats = np.concatenate([acc, gyro], axis=1).T.copy()
    ints = np.stack([np.arange(n), labels]).astype(np.int64)
    if shuffle_blocks:  # int block first, columns named through integer-array mgr_locs
        blocks = [(ints[::-1].copy(), np.array([7, 6])), (floats, np.arange(6))]
    else:
        blocks = [(floats, slice(0, 6, 1)), (ints, slice(6, 8, 1))]
    return DataFrame(BlockManager(names, blocks, n))


def dumps(obj):
    with fake_pandas():
        return pickle.dumps(obj, protocol=2)


def write_gz(path, obj):
    with gzip.open(path, "wb") as f:
        f.write(dumps(obj))
