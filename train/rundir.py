"""Run folders: what a training run writes, refusing to clobber, and the versions it records."""
from __future__ import annotations

import importlib.metadata
import platform
import re
import shutil
from pathlib import Path
from typing import Dict

import numpy as np

from har_train.errors import RunExistsError

#: Everything `train` writes into a run folder; `--overwrite` removes only these.
RUN_FILES = ("model.keras", "spec.json", "config.json", "versions.json", "fingerprint.txt",
             "metrics.json", "history.csv", "confusion_matrix.png", "training_curves.png",
             "logs", "kfold.json")
#: versions.json key -> distributions that provide it (read from metadata, never imported).
VERSIONED_PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax",),
                      "jaxlib": ("jaxlib",), "torch": ("torch",), "har-edge": ("har-edge",)}


def check_out_dir(out_dir, overwrite: bool) -> Path:
    """Refuse a run folder that is a file, or non-empty without `overwrite` (creates nothing)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"{out} exists and is not a folder")
    if not overwrite and out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} already exists and is not empty; "
                             "pass --overwrite or choose another --out")
    return out


def prepare_out_dir(out_dir, overwrite: bool) -> Path:
    """Create the run folder after `check_out_dir`.

    Overwriting removes only the files a run writes, never anything else in the folder.
    """
    out = check_out_dir(out_dir, overwrite)
    if out.exists():
        for child in out.iterdir():
            if child.name in RUN_FILES or re.fullmatch(r"fold\d+", child.name):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def package_versions() -> Dict[str, str]:
    """Versions of the software that shaped the model, without importing optional backends."""
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "backend": keras.backend.backend(), "numpy": np.__version__,
                "platform": platform.platform()}
    for key, dists in VERSIONED_PACKAGES.items():
        for dist in dists:
            try:
                versions[key] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions
