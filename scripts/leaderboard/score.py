"""Score a bundle's TFLite variants on saved windows with the runtime interpreter (no TensorFlow).

Run as its own process, usually with the runtime environment's Python, because tflite-runtime
must not share a process with TensorFlow (the training side of the leaderboard has it loaded):

    python -m scripts.leaderboard.score BUNDLE WINDOWS.npz OUT.json [--variants int8,float32]

(from the repository root, which `python -m scripts.leaderboard` starts it in).

WINDOWS.npz holds `x` float32 (n, window, C); OUT.json gets, per variant, the predicted class
of every window plus the interpreter package and version that produced them.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from har_runtime.bundle import load_bundle

#: Windows per interpreter call (bounds memory on large test sets).
BATCH = 1024
#: Interpreter module name -> the distribution that records its version.
DISTRIBUTIONS = {"tflite_runtime": "tflite-runtime", "ai_edge_litert": "ai-edge-litert",
                 "tensorflow": "tensorflow-cpu"}


def _version(module: str) -> str:
    for dist in (DISTRIBUTIONS.get(module, module), module):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def score_bundle(bundle_dir, x: np.ndarray, variants: Sequence[str]) -> Dict[str, Dict]:
    """Predicted class per window for each variant (gate-failed variants are scored too)."""
    bundle = load_bundle(bundle_dir)
    out: Dict[str, Dict] = {}
    for name in variants:
        clf = bundle.open(name, allow_undeployable=True)
        pred = np.concatenate([clf.predict(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])
        out[name] = {"pred": pred.astype(int).tolist(), "interpreter": clf.interpreter_name,
                     "interpreter_version": _version(clf.interpreter_name),
                     "size_bytes": int(bundle.variants[name].size_bytes),
                     "deployable": bool(bundle.variants[name].deployable)}
    return out


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry: score BUNDLE on WINDOWS.npz and write OUT.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("windows", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--variants", default="int8,float32")
    args = parser.parse_args(list(argv) or None)
    with np.load(args.windows) as data:
        x = np.asarray(data["x"], dtype=np.float32)
    scores = score_bundle(args.bundle, x, [v for v in args.variants.split(",") if v])
    args.out.write_text(json.dumps(scores) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
