"""The on-device classifier: one TFLite model, float windows in, class probabilities out.

Three Python packages ship a TFLite interpreter with the same API: `tflite_runtime` (small, the
Raspberry Pi choice), `ai_edge_litert` (its successor, the only one for Python >= 3.12) and
`tensorflow` (`tf.lite.Interpreter`). Nothing is imported at module level, so this module costs
nothing until a model is opened, and it never pulls TensorFlow into a process that lacks it.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from har_runtime.contract.input_norm import InputNorm

#: Interpreter packages in the order tried when none is named.
INTERPRETERS: Tuple[str, ...] = ("tflite_runtime", "ai_edge_litert", "tensorflow")
#: Environment variable that names the interpreter when the caller does not.
INTERPRETER_ENV = "HAR_EDGE_INTERPRETER"
INSTALL_HINT = ("install one: pip install tflite-runtime (Python <= 3.11), "
                "pip install ai-edge-litert, or pip install tensorflow")

ModelSource = Union[str, os.PathLike, bytes, bytearray, memoryview]


class InterpreterUnavailableError(ImportError):
    """No usable TFLite interpreter package (or the one asked for) can be imported."""


class ModelLoadError(ValueError):
    """A model file or buffer the interpreter cannot load, or one that is not a classifier."""


def _tflite_runtime() -> Callable:
    return importlib.import_module("tflite_runtime.interpreter").Interpreter


def _ai_edge_litert() -> Callable:
    return importlib.import_module("ai_edge_litert.interpreter").Interpreter


def _tensorflow() -> Callable:
    module = importlib.import_module("tensorflow.lite.python.interpreter")

    def make(**kwargs: Any) -> Any:
        # TF 2.18 warns on every construction that tf.lite moves to ai_edge_litert; we already
        # prefer that package when it is installed, so the warning only adds noise here.
        # Its default XNNPACK delegate corrupts memory (segfault on delete) when a
        # dynamic-range model is resized to batch >= 8 after allocation, which the batch
        # resizing below does, so TF's interpreter runs the builtin kernels only.
        resolver = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Warning: Please use the LiteRT")
            return module.Interpreter(experimental_op_resolver_type=resolver, **kwargs)

    return make


_LOADERS: Dict[str, Callable[[], Callable]] = {
    "tflite_runtime": _tflite_runtime,
    "ai_edge_litert": _ai_edge_litert,
    "tensorflow": _tensorflow,
}


def resolve_interpreter(name: Optional[str] = None) -> Tuple[str, Callable]:
    """Return (package name, Interpreter factory) for `name`, $HAR_EDGE_INTERPRETER or the default.

    The default order is INTERPRETERS, except that a process which has already imported
    TensorFlow uses TensorFlow's interpreter: tflite-runtime 2.14 crashes when both are loaded.
    """
    choice = name or os.environ.get(INTERPRETER_ENV) or None
    if choice is not None:
        if choice not in _LOADERS:
            raise InterpreterUnavailableError(
                f"unknown interpreter {choice!r}; choose from {list(INTERPRETERS)}")
        if choice == "tflite_runtime" and "tensorflow" in sys.modules:
            raise InterpreterUnavailableError(
                "tflite_runtime cannot run in a process that has imported tensorflow "
                "(the two crash together); use interpreter 'tensorflow' here")
        order: Tuple[str, ...] = (choice,)
    elif "tensorflow" in sys.modules:
        order = ("tensorflow",)
    else:
        order = INTERPRETERS
    failures = []
    for candidate in order:
        try:
            return candidate, _LOADERS[candidate]()
        except ImportError as exc:
            failures.append(f"{candidate} ({exc})")
    raise InterpreterUnavailableError(
        f"no TFLite interpreter could be imported: {'; '.join(failures)}; {INSTALL_HINT}")


def load_interpreter(factory: Callable, model: ModelSource, num_threads: int) -> Any:
    """An allocated interpreter for a .tflite path or bytes; ModelLoadError (one line) if the
    file is missing or the interpreter refuses it."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        kwargs: Dict[str, Any] = {"model_content": bytes(model)}
        where = "model bytes"
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"model file {path} does not exist")
        kwargs, where = {"model_path": str(path)}, str(path)
    try:
        interp = factory(num_threads=num_threads, **kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load TFLite model from {where}: {first}") from None
    return interp


def _clip_ufunc() -> Callable:
    """The clip ufunc behind np.clip (numpy >= 1.17), without np.clip's Python layer, which
    costs more than the clamping of a window."""
    for name in ("numpy._core.umath", "numpy.core.umath"):
        try:
            return importlib.import_module(name).clip
        except (ImportError, AttributeError):
            continue
    return np.clip


_clip = _clip_ufunc()

#: Most windows an integer model runs one by one while its tensor holds a single window (see
#: `TFLiteClassifier.predict_proba`).
ROWWISE_MAX = 4

#: Integer tensor types the classifier quantises to / dequantises from.
QUANTISED_DTYPES = (np.int8, np.uint8)


def _quant(details: Dict[str, Any], role: str) -> Optional[Tuple[float, int]]:
    """(scale, zero point) of a quantised integer tensor, None for a float32 tensor.

    `role` ("input"/"output") names the tensor in errors: har-export strips tensor names."""
    dtype = np.dtype(details["dtype"])
    if dtype == np.float32:
        return None
    if dtype not in QUANTISED_DTYPES:
        raise ModelLoadError(f"the {role} tensor is {dtype.name}; only float32, int8 "
                             "and uint8 inputs and outputs are supported")
    scale, zero_point = details["quantization"]
    if not scale:
        raise ModelLoadError(f"the {role} tensor is {dtype.name} but has no quantisation scale")
    return float(scale), int(zero_point)


class TFLiteClassifier:
    """A single-input, single-output TFLite classifier over windows (n, window, C).

    `model` is a .tflite path or the model's bytes. Integer (int8/uint8) input and output
    tensors are handled here: inputs are quantised with the tensor's own scale and zero point,
    outputs dequantised, so callers always pass float32 windows and get float32 probabilities.
    `input_norm` (from the bundle) standardises each channel before the model sees it; callers
    still pass windows in sensor units.

    Per call: `predict_proba` = `set_input` + `invoke_raw` + `get_output`. Benchmarks can call
    `set_input` once and time `invoke_raw` alone to measure the bare interpreter.
    """

    #: `set_input` copies the windows into the interpreter, so callers may pass buffers they
    #: reuse (the stream hands over a view of its windower's buffer).
    copies_input = True

    def __init__(self, model: ModelSource, num_threads: int = 1,
                 interpreter: Optional[str] = None, input_norm: Optional[InputNorm] = None):
        if int(num_threads) < 1:
            raise ValueError("num_threads must be >= 1")
        self.interpreter_name, factory = resolve_interpreter(interpreter)
        self._interp = load_interpreter(factory, model, int(num_threads))
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(f"expected one input and one output tensor, got "
                                 f"{len(inputs)} and {len(outputs)}")
        self.input_details: Dict[str, Any] = inputs[0]
        self.output_details: Dict[str, Any] = outputs[0]
        in_shape, out_shape = tuple(inputs[0]["shape"]), tuple(outputs[0]["shape"])
        if len(in_shape) != 3 or len(out_shape) != 2:
            raise ModelLoadError(f"expected input (n, window, channels) and output (n, classes), "
                                 f"got {list(in_shape)} and {list(out_shape)}")
        self.input_shape: Tuple[int, int] = (int(in_shape[1]), int(in_shape[2]))
        self.num_classes = int(out_shape[1])
        self.input_dtype = np.dtype(inputs[0]["dtype"])
        self.output_dtype = np.dtype(outputs[0]["dtype"])
        self.input_quantization = _quant(inputs[0], "input")
        self.output_quantization = _quant(outputs[0], "output")
        self._in_index, self._out_index = inputs[0]["index"], outputs[0]["index"]
        if input_norm is not None and input_norm.channels != self.input_shape[1]:
            raise ModelLoadError(f"input_norm has {input_norm.channels} channels but the model "
                                 f"takes {self.input_shape[1]}")
        self.input_norm = input_norm
        self._buffers(int(in_shape[0]))
        # Integer models compute each window's output in integers on its own, so the batch size
        # cannot change a bit of it (checked in tests/runtime/test_interpreter.py).
        self._rowwise = (self.input_quantization is not None
                         and self.output_quantization is not None)
        if self.input_quantization is not None:
            self._input_affine(input_norm)
        elif input_norm is not None:
            # Tiled to a whole window, as in `_input_affine`.
            tile = (self.input_shape[0], 1)
            self._norm_mean, self._norm_std = (np.tile(v, tile) for v in input_norm.arrays())
        if self.output_quantization is not None:
            # Dequantisation as a 256-entry table indexed by the raw byte: one numpy call per
            # batch instead of three, with values identical to scale * (q - zero_point).
            scale, zero = self.output_quantization
            levels = np.arange(256, dtype=np.uint8).view(self.output_dtype).astype(np.float32)
            self._out_table = (levels - np.float32(zero)) * np.float32(scale)

    def _input_affine(self, norm: Optional[InputNorm]) -> None:
        """Constants of the float -> integer input step, `q = x * mul + add` when standardising
        (the standardisation folded into the quantisation: same number of numpy calls) and
        `q = x / scale + zero` otherwise."""
        # 0-d arrays rather than numpy scalars: ufuncs take them without a conversion.
        info = np.iinfo(self.input_dtype)
        self._in_lo = np.array(info.min, np.float32)
        self._in_hi = np.array(info.max, np.float32)
        scale, zero = self.input_quantization
        self._in_scale = np.array(scale, np.float32)
        self._in_zero = np.array(zero, np.float32)
        if norm is not None:
            mean, std = (np.asarray(v, np.float64) for v in (norm.mean, norm.std))
            # Tiled to a whole window (window, C): a per-channel (C,) operand would make the
            # ufunc loop over runs of C values, one window row at a time; a full-window one lets
            # it run over the window in one contiguous pass. Same values, element by element.
            tile = (self.input_shape[0], 1)
            self._in_mul = np.tile((1.0 / (std * scale)).astype(np.float32), tile)
            self._in_add = np.tile((zero - mean / (std * scale)).astype(np.float32), tile)

    def _buffers(self, batch: int) -> None:
        """Reusable per-batch-size buffers for input standardisation and quantisation."""
        self._batch = batch
        if self.input_quantization is not None or self.input_norm is not None:
            self._scratch = np.empty((batch,) + self.input_shape, np.float32)
        if self.input_quantization is not None:
            self._quantised = np.empty((batch,) + self.input_shape, self.input_dtype)

    def _resize(self, batch: int) -> None:
        self._interp.resize_tensor_input(self._in_index, [batch, *self.input_shape])
        self._interp.allocate_tensors()
        self._buffers(batch)

    def set_input(self, windows: np.ndarray) -> int:
        """Quantise (if needed) and copy windows (n, window, C) into the input tensor; return n."""
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != self.input_shape:
            raise ValueError(f"windows must be (n, {self.input_shape[0]}, {self.input_shape[1]}), "
                             f"got {x.shape}")
        n = x.shape[0]
        if n == 0:
            return 0
        if n != self._batch:
            self._resize(n)
        if self.input_quantization is None:
            if self.input_norm is not None:
                x = np.subtract(x, self._norm_mean, out=self._scratch)
                np.divide(x, self._norm_std, out=x)
            self._interp.set_tensor(self._in_index, np.ascontiguousarray(x))
            return n
        q = self._scratch
        if self.input_norm is not None:
            np.multiply(x, self._in_mul, out=q)
            np.add(q, self._in_add, out=q)
        else:
            np.divide(x, self._in_scale, out=q)
            np.add(q, self._in_zero, out=q)
        # Clamping before rounding equals clamping after (the bounds are integers) and lets
        # rint write the integer buffer directly. The clip ufunc itself (min(max(q, lo), hi),
        # NaN kept, as np.maximum then np.minimum) skips np.clip's costly Python layer.
        _clip(q, self._in_lo, self._in_hi, out=q)
        np.rint(q, out=self._quantised, casting="unsafe")
        self._interp.set_tensor(self._in_index, self._quantised)
        return n

    def invoke_raw(self) -> None:
        """Run the interpreter on whatever the input tensor holds (no conversion, no copy)."""
        self._interp.invoke()

    def get_output(self) -> np.ndarray:
        """The last invocation's output as float32 (n, K), dequantised if the tensor is integer."""
        out = self._interp.get_tensor(self._out_index)  # already a copy
        if self.output_quantization is None:
            return out
        return self._out_table.take(out.view(np.uint8))

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities float32 (n, K) for float32 windows (n, window, C).

        An integer model given a few windows (at most ROWWISE_MAX) while its tensor holds one
        runs them one by one: a stream whose jittered clock completes two windows in one push
        would otherwise resize the interpreter (allocate_tensors) there and back, which costs
        more than the extra invokes. The probabilities are the same either way."""
        if self._rowwise and self._batch == 1 and 1 < len(windows) <= ROWWISE_MAX:
            return np.concatenate([self._predict(windows[i:i + 1]) for i in range(len(windows))])
        return self._predict(windows)

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        if self.set_input(windows) == 0:
            return np.empty((0, self.num_classes), np.float32)
        self._interp.invoke()
        return self.get_output()

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Most probable class index per window (n,)."""
        return np.argmax(self.predict_proba(windows), axis=1)
