"""Reading a deployment bundle: bundle.json plus one .tflite file per model variant.

The bundle is the only thing a device needs: the preprocessing spec, the label order, the
smoothing defaults and the models, each with its sha256. `load_bundle` trusts nothing in the
folder: it checks the schema version, every field it relies on and every file's hash before
anything runs. docs/BUNDLE.md describes the format for consumers without this code.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from har_runtime.context import ContextError, ContextFilter, ContextRunner
from har_runtime.contract.input_norm import InputNorm, InputNormError
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.contract.spec import PreprocessSpec, SpecError
from har_runtime.interpreter import ModelLoadError, TFLiteClassifier
from har_runtime.recurrent_context import (METHOD as RECURRENT_METHOD, RecurrentContext,
                                           RecurrentContextError, RecurrentHead)

#: The bundle.json layout writers stamp. Version 2 added `input_norm` (models take standardised
#: channels); version 1 bundles (models take sensor units) still load. Version 3 is version 2
#: plus a `context` (temporal context, which changes the predictions, so readers that predate
#: it must refuse such a bundle); writers stamp it only on bundles that have one.
SCHEMA_VERSION = 2
CONTEXT_SCHEMA_VERSION = 3
READABLE_SCHEMAS = (1, 2, 3)
BUNDLE_FILE = "bundle.json"
#: Tensor dtypes a bundle may declare for a model's input and output.
TENSOR_DTYPES = ("float32", "int8", "uint8")

_REQUIRED = ("schema_version", "labels", "spec", "variants", "recommended", "smoothing")
_VARIANT_REQUIRED = ("file", "sha256", "size_bytes", "input", "output", "deployable")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A bundle names files inside its own folder only: no separators, no hidden or parent entries.
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_TIER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class BundleError(Exception):
    """A bundle that is missing, malformed, tampered with or asked for something it lacks."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as bundle.json declares it; `shape[0]` is -1 (any batch)."""

    shape: Tuple[int, ...]
    dtype: str
    #: (scale, zero_point) for integer tensors: real = scale * (q - zero_point); None for float.
    quantization: Optional[Tuple[float, int]]


@dataclass(frozen=True)
class VariantInfo:
    """One model variant of a bundle (float32, float16, dynamic, int8)."""

    name: str
    file: str
    path: Path
    sha256: str
    size_bytes: int
    input: TensorInfo
    output: TensorInfo
    deployable: bool
    ops: Mapping[str, int]
    parity: Mapping[str, Any]


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle. `recommended` is None only when no variant passed the parity gate."""

    path: Path
    schema_version: int
    spec: PreprocessSpec
    labels: Tuple[str, ...]
    variants: Mapping[str, VariantInfo]
    recommended: Optional[str]
    smoothing: SmoothingSettings
    training: Mapping[str, Any]
    gate: Mapping[str, Any]
    files: Mapping[str, str]
    #: Per-channel standardisation every variant expects before its input (None: sensor units).
    input_norm: Optional[InputNorm] = None
    #: The deployment tier the int8 file was checked to fit ("mcu", "pi"; see
    #: har_runtime.contract.tiers), None when the bundle records none (older bundles too).
    tier: Optional[str] = None
    #: Temporal context over the window outputs (schema 3; None: every window on its own):
    #: the posture tracker's settings or a recurrent head's (its model is in `files`).
    context: Optional[Union[ContextFilter, RecurrentContext]] = None

    def open(self, variant: Optional[str] = None, interpreter: Optional[str] = None,
             num_threads: int = 1, allow_undeployable: bool = False) -> TFLiteClassifier:
        """A classifier for `variant` (default: the recommended one), hash-checked on read."""
        name = variant or self.recommended
        if name is None:
            raise BundleError(f"{self.path}: no variant passed the parity gate; name one and "
                              "pass allow_undeployable=True to use it anyway")
        if name not in self.variants:
            raise BundleError(f"{self.path}: no variant {name!r}; it has {sorted(self.variants)}")
        info = self.variants[name]
        if not info.deployable and not allow_undeployable:
            raise BundleError(f"variant {name!r} failed the parity gate (deployable=false); "
                              "pass allow_undeployable=True to use it anyway")
        content = info.path.read_bytes()
        if hashlib.sha256(content).hexdigest() != info.sha256:
            raise BundleError(f"{info.file}: sha256 does not match bundle.json (file changed)")
        try:
            clf = TFLiteClassifier(content, num_threads=num_threads, interpreter=interpreter,
                                   input_norm=self.input_norm)
        except ModelLoadError as exc:
            raise BundleError(f"{info.file}: {exc}") from None
        _check_classifier(clf, info, self.spec)
        # Carried with the classifier, like input_norm, so every stream built on it (replay,
        # the daemon) runs the bundle's context; each stream keeps its own state.
        clf.context = self.context_runner(interpreter)
        return clf

    def context_runner(self, interpreter: Optional[str] = None) -> Optional[ContextRunner]:
        """What streams run as this bundle's context: the tracker's settings, or its recurrent
        head opened (hash-checked) with `interpreter`; None without a context."""
        if not isinstance(self.context, RecurrentContext):
            return self.context
        path = self.path / self.context.file
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != self.files.get(self.context.file):
            raise BundleError(f"{self.context.file}: sha256 does not match bundle.json "
                              "(file changed)")
        try:
            return RecurrentHead(self.context, content, interpreter)
        except RecurrentContextError as exc:
            raise BundleError(str(exc)) from None


def _check_classifier(clf: TFLiteClassifier, info: VariantInfo, spec: PreprocessSpec) -> None:
    problems = []
    if clf.input_shape != spec.input_shape:
        problems.append(f"input {clf.input_shape} but the spec makes windows {spec.input_shape}")
    if clf.num_classes != spec.num_classes:
        problems.append(f"{clf.num_classes} outputs but {spec.num_classes} labels")
    declared = (info.input.dtype, info.input.quantization, tuple(info.input.shape[1:]),
                info.output.dtype, info.output.quantization)
    actual = (clf.input_dtype.name, clf.input_quantization, clf.input_shape,
              clf.output_dtype.name, clf.output_quantization)
    if declared != actual:
        problems.append("tensor dtype, shape or quantisation differs from bundle.json")
    if problems:
        raise BundleError(f"{info.file}: {'; '.join(problems)}")


def _need(mapping: Any, keys: Tuple[str, ...], where: str) -> Dict[str, Any]:
    if not isinstance(mapping, dict):
        raise BundleError(f"{where} must be a JSON object")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise BundleError(f"{where} lacks field(s) {missing}")
    return mapping


def _file_in(root: Path, name: Any, where: str) -> Path:
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise BundleError(f"{where}: {name!r} is not a plain file name inside the bundle")
    path = root / name
    if not path.is_file():
        raise BundleError(f"{where}: file {name} is missing from {root}")
    return path


def _check_hash(path: Path, expected: Any, verify: bool) -> str:
    if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
        raise BundleError(f"{path.name}: sha256 in bundle.json is not 64 lowercase hex digits")
    if verify:
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(f"{path.name}: sha256 mismatch (bundle.json says {expected[:12]}…, "
                              f"file has {actual[:12]}…); the file was modified or corrupted")
    return expected


def _tensor(data: Any, where: str) -> TensorInfo:
    data = _need(data, ("shape", "dtype", "quantization"), where)
    shape, dtype, quant = data["shape"], data["dtype"], data["quantization"]
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise BundleError(f"{where}.shape must be a list of integers")
    if dtype not in TENSOR_DTYPES:
        raise BundleError(f"{where}.dtype must be one of {list(TENSOR_DTYPES)}, got {dtype!r}")
    if quant is None:
        if dtype != "float32":
            raise BundleError(f"{where}: integer tensor without quantization parameters")
        return TensorInfo(tuple(shape), dtype, None)
    quant = _need(quant, ("scale", "zero_point"), f"{where}.quantization")
    scale, zero = quant["scale"], quant["zero_point"]
    if not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale <= 0 \
            or not isinstance(zero, int):
        raise BundleError(f"{where}.quantization needs a positive scale and an integer zero_point")
    return TensorInfo(tuple(shape), dtype, (float(scale), zero))


def _variant(root: Path, name: str, data: Any, verify: bool) -> VariantInfo:
    where = f"variants.{name}"
    data = _need(data, _VARIANT_REQUIRED, where)
    path = _file_in(root, data["file"], where)
    size = data["size_bytes"]
    if not isinstance(size, int) or size != path.stat().st_size:
        raise BundleError(f"{data['file']}: size is {path.stat().st_size} bytes, "
                          f"bundle.json says {size!r}")
    if not isinstance(data["deployable"], bool):
        raise BundleError(f"{where}.deployable must be true or false")
    ops, parity = data.get("ops", {}), data.get("parity", {})
    if not isinstance(ops, dict) or not isinstance(parity, dict):
        raise BundleError(f"{where}.ops and {where}.parity must be JSON objects")
    return VariantInfo(name=name, file=data["file"], path=path,
                       sha256=_check_hash(path, data["sha256"], verify), size_bytes=size,
                       input=_tensor(data["input"], f"{where}.input"),
                       output=_tensor(data["output"], f"{where}.output"),
                       deployable=data["deployable"], ops=MappingProxyType(dict(ops)),
                       parity=MappingProxyType(dict(parity)))


def _read_document(root: Path) -> Dict[str, Any]:
    doc_path = root / BUNDLE_FILE
    if not doc_path.is_file():
        raise BundleError(f"{root} is not a bundle: {BUNDLE_FILE} is missing")
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, nesting and int-size errors
        raise BundleError(f"{doc_path} is not valid JSON: {exc}") from None
    doc = _need(doc, ("schema_version",), BUNDLE_FILE)
    version = doc["schema_version"]
    if version not in READABLE_SCHEMAS or isinstance(version, bool):
        raise BundleError(f"bundle schema version {version!r} is not supported "
                          f"(this runtime reads versions {list(READABLE_SCHEMAS)})")
    return _need(doc, _REQUIRED + (("input_norm",) if version >= 2 else ()), BUNDLE_FILE)


def _input_norm(doc: Dict[str, Any], spec: PreprocessSpec) -> Optional[InputNorm]:
    data = doc.get("input_norm")
    if data is None:
        return None
    try:
        norm = InputNorm.from_dict(data)
    except InputNormError as exc:
        raise BundleError(f"bundle.json {exc}") from None
    if norm.channels != len(spec.model_channels):
        raise BundleError(f"bundle.json input_norm has {norm.channels} channels but the spec "
                          f"has {len(spec.model_channels)}")
    return norm


def _tier(doc: Dict[str, Any]) -> Optional[str]:
    """The optional top-level `tier`: a name, kept even when this runtime does not know it (it
    describes the device class, it cannot change a prediction)."""
    tier = doc.get("tier")
    if tier is not None and not (isinstance(tier, str) and _TIER_NAME.fullmatch(tier)):
        raise BundleError(f"bundle.json tier must be a short lowercase name or null, got "
                          f"{str(tier)[:40]!r}")
    return tier


def _context(doc: Dict[str, Any], labels: Tuple[str, ...],
             files: Mapping[str, str]) -> Optional[Union[ContextFilter, RecurrentContext]]:
    if doc["schema_version"] < CONTEXT_SCHEMA_VERSION:
        return None  # a field an older writer did not know; never applied
    data = doc.get("context")
    if data is None:
        raise BundleError(f"bundle.json schema {CONTEXT_SCHEMA_VERSION} needs a context")
    try:
        if isinstance(data, dict) and data.get("method") == RECURRENT_METHOD:
            context: Union[ContextFilter, RecurrentContext] = RecurrentContext.from_dict(data)
        else:
            context = ContextFilter.from_dict(data)
    except (ContextError, RecurrentContextError) as exc:
        raise BundleError(f"bundle.json {exc}") from None
    if isinstance(context, RecurrentContext) and context.file not in files:
        # `files` is what load_bundle hash-checks: a head outside it would run unverified.
        raise BundleError(f"bundle.json context file {context.file!r} is not listed in files")
    if context.labels != labels:
        raise BundleError("bundle.json context labels must equal the bundle's labels")
    return context


def _spec_and_labels(doc: Dict[str, Any]) -> Tuple[PreprocessSpec, Tuple[str, ...]]:
    try:
        spec = PreprocessSpec.from_dict(doc["spec"])
    except SpecError as exc:
        raise BundleError(f"bundle.json spec: {exc}") from None
    labels = doc["labels"]
    if not isinstance(labels, list) or tuple(labels) != spec.labels:
        raise BundleError("bundle.json labels must equal the spec's labels, in model output order")
    return spec, spec.labels


def load_bundle(path, verify: bool = True) -> Bundle:
    """Load the bundle in folder `path` (or its bundle.json), checking every file's sha256.

    `verify=False` skips hashing (the files must still exist with their recorded sizes);
    `Bundle.open` re-checks the hash of the model it loads either way.
    """
    root = Path(path)
    if root.name == BUNDLE_FILE and root.is_file():
        root = root.parent
    doc = _read_document(root)
    spec, labels = _spec_and_labels(doc)
    if not isinstance(doc["variants"], dict) or not doc["variants"]:
        raise BundleError("bundle.json variants must be a non-empty JSON object")
    variants = {name: _variant(root, name, data, verify) for name, data in doc["variants"].items()}
    recommended = doc["recommended"]
    if recommended is not None and not isinstance(recommended, str):
        raise BundleError("bundle.json recommended must be a variant name or null")
    if recommended is not None and not (recommended in variants
                                        and variants[recommended].deployable):
        raise BundleError(f"recommended variant {recommended!r} is not a deployable variant")
    try:
        smoothing = SmoothingSettings.from_dict(doc["smoothing"])
    except (ValueError, TypeError) as exc:
        raise BundleError(f"bundle.json smoothing: {exc}") from None
    files = doc.get("files", {})
    if not isinstance(files, dict):
        raise BundleError("bundle.json files must be a JSON object")
    for name, digest in files.items():
        _check_hash(_file_in(root, name, "files"), digest, verify)
    training, gate = doc.get("training") or {}, doc.get("gate") or {}
    if not isinstance(training, dict) or not isinstance(gate, dict):
        raise BundleError("bundle.json training and gate must be JSON objects")
    return Bundle(path=root, schema_version=doc["schema_version"], spec=spec, labels=labels,
                  variants=MappingProxyType(variants), recommended=recommended,
                  smoothing=smoothing, training=MappingProxyType(training),
                  gate=MappingProxyType(gate), files=MappingProxyType(dict(files)),
                  input_norm=_input_norm(doc, spec), tier=_tier(doc),
                  context=_context(doc, labels, files))
