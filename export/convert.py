"""Keras model -> TFLite variants (float32, float16, dynamic-range int8, full int8).

Conversion goes through a SavedModel (`model.export(..., format="tf_saved_model")`), the path
Keras 3 supports; `from_concrete_functions` trips over Keras 3 variables. Only TFLite builtin
ops are allowed (no Flex/Select-TF ops): the device runs tflite-runtime, which has none of them.
TensorFlow and Keras are imported inside the functions so the sampling helpers stay cheap.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_export.errors import ConversionError, InputError, OptionError
from har_export.tflog import native_logs_captured
from har_runtime.contract.input_norm import InputNorm

#: Every variant we can build, in the order they are converted and reported.
VARIANTS: Tuple[str, ...] = ("float32", "float16", "dynamic", "int8")
VARIANT_HELP = {
    "float32": "plain float model (the reference)",
    "float16": "float16 weights, float32 compute",
    "dynamic": "dynamic-range quantisation: int8 weights, float activations",
    "int8": "full integer: int8 weights, activations, input and output",
}
DEFAULT_CALIBRATION_SIZE = 512
#: The int8 input range, in standard deviations of the training data: calibration windows are
#: clipped to +-this before the converter measures them, so rare extreme samples cannot coarsen
#: every window's resolution; at run time larger values saturate. Chosen on validation subjects
#: (docs/RESULTS_CHOICES.md, "int8 input path").
INPUT_CLIP_STD = 3.0


def parse_variants(names: Iterable[str]) -> Tuple[str, ...]:
    """Variant names from the command line (repeated and/or comma-separated), in VARIANTS order."""
    chosen = {part.strip() for name in names for part in name.split(",") if part.strip()}
    unknown = sorted(chosen - set(VARIANTS))
    if unknown:
        raise OptionError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if not chosen:
        raise OptionError(f"no variants chosen; choose from {list(VARIANTS)}")
    return tuple(v for v in VARIANTS if v in chosen)


def load_keras_model(path) -> Any:
    """Load a .keras file in safe mode (no code from the file runs); InputError if it cannot."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    import keras

    import har_train.qat  # noqa: F401  registers the QAT layer, so QAT runs load safely

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for bad files; each ends the same way.
        text = " ".join(str(exc).split())
        if "Lambda" in text and "safe_mode" in text:
            raise InputError(f"{path}: contains a Lambda layer, which safe mode refuses to load "
                             "(it would run code from the file); rebuild the model without "
                             "Lambda layers") from None
        raise InputError(f"{path}: not a loadable Keras model ({type(exc).__name__}: "
                         f"{text[:200]})") from None


def check_model_io(model: Any, input_shape: Tuple[int, int], num_classes: int) -> None:
    """InputError unless the model maps (None, window, C) to (None, num_classes)."""
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"the model must have one input and one output, has {len(inputs)} "
                         f"and {len(outputs)}")
    got_in, got_out = tuple(inputs[0].shape[1:]), tuple(outputs[0].shape[1:])
    if got_in != tuple(input_shape) or got_out != (num_classes,):
        raise InputError(f"the model maps {got_in} -> {got_out} but the run's spec needs "
                         f"{tuple(input_shape)} -> ({num_classes},)")


def split_input_norm(model: Any) -> Tuple[Any, Optional[InputNorm]]:
    """(graph to convert, standardisation the runtime applies before it).

    When the model's input feeds only a per-channel Keras `Normalization` layer (every model
    `har-train` builds), the graph is cut after it and its constants go to the bundle: inside a
    full-int8 graph the input would be quantised with one scale for all channels first. Any other
    model converts whole and takes sensor units.
    """
    import keras

    norm = model.layers[1] if len(model.layers) > 1 else None
    if not isinstance(norm, keras.layers.Normalization) or norm.invert \
            or tuple(norm.axis) not in ((-1,), (len(model.inputs[0].shape) - 1,)) \
            or norm.input is not model.inputs[0]:
        return model, None
    try:
        core = keras.Model(norm.output, model.output, name=f"{model.name}_core")
    except ValueError:  # another layer also reads the raw input: the cut would disconnect it
        return model, None
    if len(core.layers) != len(model.layers) - 1:
        return model, None
    return core, InputNorm.from_variance(np.asarray(norm.mean), np.asarray(norm.variance))


def input_limit(graph: Any) -> float:
    """The int8 input range (+-) for a graph cut by `split_input_norm`, in its input's units.

    A graph that saturates its own input (har-train's `--input-clip`: every path starts with a
    hard tanh, nested ensemble members included) is calibrated to exactly [-1, 1], so float and
    int8 clip the same values; any other graph to +-INPUT_CLIP_STD."""
    return 1.0 if _input_saturates(graph) else INPUT_CLIP_STD


def input_readers(graph: Any) -> List[Any]:
    """The layers (nested models included, not entered) that read `graph`'s first input."""
    tensor = graph.inputs[0]
    # Keras has no public "consumers of a tensor"; inbound nodes also list calls made in other
    # graphs (a member core called inside an ensemble), so match the tensor by identity.
    return [op for op in graph.operations
            if any(any(t is tensor for t in node.input_tensors) for node in op._inbound_nodes)]


def _input_saturates(graph: Any) -> bool:
    import keras

    readers = input_readers(graph)
    return bool(readers) and all(
        _input_saturates(op) if isinstance(op, keras.Model)
        else isinstance(op, keras.layers.Activation)
        and getattr(op.activation, "__name__", "") == "hard_tanh"
        for op in readers)


def int8_calibration(windows: np.ndarray, norm: Optional[InputNorm],
                     limit: float = INPUT_CLIP_STD) -> np.ndarray:
    """Calibration windows as the converted graph sees them: standardised and clipped to
    +-`limit` (see `input_limit`) when the graph was cut (`split_input_norm`), else unchanged."""
    windows = np.asarray(windows, np.float32)
    if norm is None:
        return windows
    return np.clip(norm.apply(windows), -limit, limit).astype(np.float32)


def representative_indices(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Up to `size` indices into `y`, balanced across classes (round robin), seeded.

    Balanced rather than proportional: int8 ranges are set by the extremes of the calibration
    data, and a rare class (a fast activity) can own those extremes.
    """
    if size < 1:
        raise OptionError("calibration size must be >= 1")
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    depth = max((len(p) for p in pools), default=0)
    # Round robin: first one of each class, then a second of each, and so on.
    order = [p[i] for i in range(depth) for p in pools if i < len(p)]
    return np.sort(np.asarray(order[:size], dtype=np.int64))


def keras_probabilities(model: Any, windows: np.ndarray) -> np.ndarray:
    """The Keras model's softmax output for windows, float32 (n, K)."""
    probs = model.predict(np.asarray(windows, np.float32), batch_size=512, verbose=0)
    return np.asarray(probs, dtype=np.float32)


def _configure(converter: Any, variant: str, calibration: np.ndarray) -> None:
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        def samples():
            for i in range(len(calibration)):
                yield [calibration[i:i + 1]]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


_OP_IN_MESSAGE = re.compile(r"'((?:tf|tfl)\.\w+)' op")
_CUSTOM_OPS = re.compile(r"(?:Custom|Flex) ops: ([\w, ]+)")
_LOCATION = re.compile(r'fused\["[^"]*:", "([^"@]+)@')


def _unsupported_ops(exc: Exception) -> List[str]:
    ops = {e.operator.name for e in getattr(exc, "errors", ()) if getattr(e, "operator", None)
           and e.operator.name}
    ops.update(_OP_IN_MESSAGE.findall(str(exc)))
    for group in _CUSTOM_OPS.findall(str(exc)):
        ops.update(f"tf.{name.strip()}" for name in group.split(",") if name.strip())
    return sorted(ops)


def _layers_at(exc: Exception, layer_names: Sequence[str]) -> List[str]:
    """Names of model layers that appear in the converter's op locations."""
    found = set()
    for location in _LOCATION.findall(str(exc)):
        for part in location.split("/"):
            found.update(n for n in layer_names if re.fullmatch(re.escape(n) + r"(_\d+)?", part))
    return sorted(found)


def describe_conversion_error(exc: Exception, variant: str, layer_names: Sequence[str]) -> str:
    """One line naming the ops (and layers) the converter could not express as TFLite builtins."""
    ops = _unsupported_ops(exc)
    if ops:
        layers = _layers_at(exc, layer_names)
        where = f" in layer(s) {', '.join(layers)}" if layers else ""
        return (f"{variant}: the model uses op(s) {', '.join(ops)}{where} that TFLite builtins "
                "cannot express; replace them with supported layers")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{variant}: TFLite conversion failed: {lines[0] if lines else type(exc).__name__}"


def strip_names(content: bytes) -> bytes:
    """A .tflite file without its tensor and subgraph names or signature.

    Ops, buffers and quantisation are untouched, so outputs are bit-identical; the file is
    6-22 % smaller (names are a large share of a ~9 k-parameter model), which on a
    microcontroller is flash. Nothing in har-runtime reads the names."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert_variants(model: Any, variants: Sequence[str], calibration: np.ndarray,
                     keep_names: bool = False, verbose: bool = False,
                     progress: Optional[Callable[[str], None]] = None) -> Dict[str, bytes]:
    """Convert `model` to each named variant; `calibration` windows feed int8 calibration.

    Names are stripped (`strip_names`) unless `keep_names`, for tools that show them.
    TensorFlow's native logs are captured (`native_logs_captured`) unless `verbose`;
    `progress` is told of each variant before it converts."""
    import tensorflow as tf

    layer_names = [layer.name for layer in model.layers]
    out: Dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="har-export-") as tmp:
        saved = str(Path(tmp) / "saved_model")
        try:
            with native_logs_captured(verbose):
                model.export(saved, format="tf_saved_model", verbose=False)
        except Exception as exc:  # export traces the model: any op may object
            raise ConversionError(f"SavedModel export failed: {exc}".splitlines()[0]) from None
        for variant in variants:
            if progress:
                progress(f"converting {variant}: {VARIANT_HELP[variant]}")
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            _configure(converter, variant, np.asarray(calibration, np.float32))
            try:
                with native_logs_captured(verbose):
                    content = bytes(converter.convert())
            except Exception as exc:  # ConverterError and calibration RuntimeErrors alike
                raise ConversionError(
                    describe_conversion_error(exc, variant, layer_names)) from None
            out[variant] = content if keep_names else strip_names(content)
    return out


def calibration_summary(y: np.ndarray, subjects: np.ndarray, indices: np.ndarray,
                        seed: int, num_classes: int) -> Mapping[str, Any]:
    """What the int8 calibration saw, recorded in the bundle for audits."""
    return {
        "windows": int(len(indices)),
        "seed": int(seed),
        "source": "train",
        "subjects": sorted({int(s) for s in subjects[indices]}),
        "per_class": np.bincount(y[indices], minlength=num_classes).astype(int).tolist(),
    }
