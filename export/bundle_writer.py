"""Writing a deployment bundle (the format `har_runtime.bundle` reads; see docs/BUNDLE.md).

The folder is assembled in a temporary sibling directory and renamed into place at the end, so
a crash or a refused overwrite never leaves a half-written bundle. Hashes are taken from the
files as written, after everything else, so bundle.json describes exactly what is on disk.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from har_export.errors import OptionError
from har_export.model_info import op_counts
from har_export.parity import ParityReport
from har_runtime import __version__ as runtime_version
from har_runtime.bundle import BUNDLE_FILE, CONTEXT_SCHEMA_VERSION, SCHEMA_VERSION, sha256_file
from har_runtime.context import ContextFilter
from har_runtime.recurrent_context import RecurrentContext
from har_runtime.contract.input_norm import InputNorm
from har_runtime.contract.smoothing import DEFAULT_SMOOTHING, SmoothingSettings
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.interpreter import TFLiteClassifier

#: Which deployable variant a bundle recommends when not told: int8 runs fastest on CPUs and
#: microcontrollers, and the order is also (roughly) smallest first.
PREFERENCE: Sequence[str] = ("int8", "dynamic", "float16", "float32")
PARITY_FILE = "parity.json"


def variant_file(name: str) -> str:
    return f"model_{name}.tflite"


def recommend(deployable: Mapping[str, bool], choice: Optional[str] = None) -> Optional[str]:
    """The variant to recommend: `choice` when it passed the gate, else the first deployable
    variant in PREFERENCE order; None when nothing passed. (A failed `choice` makes the export
    exit 3 anyway, so falling back here never hides it.)"""
    if choice is not None and deployable.get(choice):
        return choice
    return next((name for name in PREFERENCE if deployable.get(name)), None)


def _tensor(details: Mapping[str, Any]) -> Dict[str, Any]:
    scale, zero_point = details["quantization"]
    integer = np.issubdtype(details["dtype"], np.integer)
    return {"shape": [int(d) for d in details["shape_signature"]],
            "dtype": np.dtype(details["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)}
            if integer else None}


def variant_entry(name: str, content: bytes, deployable: bool,
                  parity: Mapping[str, Any]) -> Dict[str, Any]:
    """The bundle.json entry of one variant, less its hash (added once the file is on disk)."""
    clf = TFLiteClassifier(content)
    return {"file": variant_file(name), "sha256": None, "size_bytes": len(content),
            "input": _tensor(clf.input_details), "output": _tensor(clf.output_details),
            "ops": op_counts(content), "deployable": bool(deployable), "parity": dict(parity)}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def check_out(out: Path, overwrite: bool) -> None:
    """OptionError unless `out` is free, or (with overwrite) an old bundle or an empty folder.

    --overwrite deletes the old folder, so it must never hit a folder that is not a bundle.
    """
    if not out.exists():
        return
    if not overwrite:
        raise OptionError(f"{out} already exists; pass --overwrite to replace it")
    if not out.is_dir() or not ((out / BUNDLE_FILE).is_file() or not any(out.iterdir())):
        raise OptionError(f"--overwrite only replaces a bundle folder; {out} has no {BUNDLE_FILE}")


def _place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished temp folder to `out`, replacing an old bundle only when allowed."""
    check_out(out, overwrite)
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def _write_payload(tmp: Path, models: Mapping[str, bytes], report: ParityReport,
                   deployable: Mapping[str, bool],
                   extra_files: Mapping[str, bytes]) -> Dict[str, Dict[str, Any]]:
    """Write models, parity.json and extra files; return the variant entries (unhashed)."""
    variants = {}
    for name, content in models.items():
        (tmp / variant_file(name)).write_bytes(content)
        variants[name] = variant_entry(name, content, deployable[name],
                                       report.variants[name].to_dict())
    _write_json(tmp / PARITY_FILE, report.to_dict())
    for name, content in extra_files.items():
        (tmp / name).write_bytes(content)
    return variants


def write_bundle(out: Path, *, spec: PreprocessSpec, models: Mapping[str, bytes],
                 report: ParityReport, training: Mapping[str, Any],
                 recommended: Optional[str] = None,
                 smoothing: SmoothingSettings = DEFAULT_SMOOTHING,
                 extra_files: Optional[Mapping[str, bytes]] = None,
                 overwrite: bool = False, input_norm: Optional[InputNorm] = None,
                 tier: Optional[str] = None,
                 context: Optional[Union[ContextFilter, RecurrentContext]] = None) -> Path:
    """Write the bundle folder `out` atomically; return its path.

    `models` maps variant name to .tflite bytes, `report` is the parity gate's verdict on them
    (a failed variant is written with deployable=false), `extra_files` are further files to
    ship and hash (C arrays). `recommended` is the chosen variant (see `recommend`); it must
    have passed the gate. `input_norm` is the standardisation every model expects first (None:
    the models take sensor units). `tier` is the deployment tier the int8 file fits
    (har_runtime.contract.tiers), written as the optional top-level `tier`; `context` the
    temporal context the runtime runs over the window outputs (it stamps schema version 3; a
    recurrent head's model file comes in `extra_files`).
    """
    out = Path(out)
    check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    deployable = {name: report.variants[name].passed for name in models}
    if recommended is not None and not deployable.get(recommended):
        raise OptionError(f"cannot recommend {recommended!r}: it is not a deployable variant")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        variants = _write_payload(tmp, models, report, deployable, extra_files or {})
        doc = _document(spec, input_norm, variants, recommended, report, training, smoothing)
        if tier is not None:
            doc["tier"] = tier
        if context is not None:
            if tuple(context.labels) != tuple(spec.labels):
                raise OptionError("the context's labels differ from the spec's")
            doc["schema_version"] = CONTEXT_SCHEMA_VERSION
            if isinstance(context, RecurrentContext) and context.file not in (extra_files or {}):
                raise OptionError(f"the context's model {context.file} is not among the files")
            doc["context"] = context.to_dict()
        for entry in variants.values():
            entry["sha256"] = sha256_file(tmp / entry["file"])
        doc["files"] = {name: sha256_file(tmp / name)
                        for name in [PARITY_FILE, *sorted(extra_files or {})]}
        _write_json(tmp / BUNDLE_FILE, doc)
        _place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _document(spec: PreprocessSpec, input_norm: Optional[InputNorm],
              variants: Dict[str, Dict[str, Any]], chosen: Optional[str],
              report: ParityReport, training: Mapping[str, Any],
              smoothing: SmoothingSettings) -> Dict[str, Any]:
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return {
        "schema_version": SCHEMA_VERSION,
        "created_utc": now.isoformat().replace("+00:00", "Z"),
        "producer": {"name": "har-export", "version": runtime_version},
        "labels": list(spec.labels),
        "label_ids": list(spec.label_ids),
        "model_channels": list(spec.model_channels),
        "window_seconds": spec.window / spec.sample_rate_hz,
        "hop_seconds": spec.hop / spec.sample_rate_hz,
        "spec": spec.to_dict(),
        "input_norm": input_norm.to_dict() if input_norm is not None else None,
        "recommended": chosen,
        "variants": variants,
        "smoothing": smoothing.to_dict(),
        "gate": report.thresholds.to_dict(),
        "training": dict(training),
    }
