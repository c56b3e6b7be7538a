"""Reading a .tflite flatbuffer: which ops it uses and how much working memory it needs.

Parsed with the schema classes TensorFlow ships (`tensorflow.lite.python.schema_py_generated`,
via `tensorflow.lite.tools.flatbuffer_utils`), not with an interpreter, so a model whose ops the
local interpreter lacks can still be inspected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from har_export.errors import InputError

#: Bytes per element of TFLite tensor types (names from schema TensorType).
_TYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8, "INT32": 4, "UINT32": 4,
               "INT64": 8, "UINT64": 8, "INT16": 2, "UINT16": 2, "INT8": 1, "UINT8": 1,
               "INT4": 1, "BOOL": 1, "COMPLEX64": 8, "COMPLEX128": 16}
#: TFLite Micro aligns every arena allocation to 16 bytes.
ARENA_ALIGNMENT = 16
#: Margin over the activation peak: planner fragmentation and kernel scratch buffers.
ARENA_MARGIN = 0.25
#: Per-tensor and per-op bookkeeping TFLM keeps in the arena (TfLiteEvalTensor, node data).
ARENA_BYTES_PER_TENSOR = 32
ARENA_BYTES_PER_OP = 64
#: Fixed overhead (allocator and interpreter structures) rounded up generously.
ARENA_FIXED_BYTES = 1024
# Ops whose int8 kernels keep a per-output-channel multiplier and shift (2 x int32) in the arena.
_PER_CHANNEL_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def _parse(model: bytes) -> Any:
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        return flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    except Exception as exc:  # the generated parser raises whatever a bad offset triggers
        raise InputError(f"not a TFLite flatbuffer ({type(exc).__name__})") from None


def _names(enum_class: Any) -> Dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def _op_names(parsed: Any) -> List[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = _names(schema.BuiltinOperator)
    names = []
    for code in parsed.operatorCodes or []:
        number = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin.get(number) == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) \
                else str(code.customCode)
            names.append(f"CUSTOM:{custom}")
        else:
            names.append(builtin.get(number, f"BUILTIN_{number}"))
    return names


def op_counts(model: bytes) -> Dict[str, int]:
    """Op name -> number of uses across all subgraphs (custom ops as CUSTOM:<name>)."""
    parsed = _parse(model)
    names = _op_names(parsed)
    counts: Dict[str, int] = {}
    for subgraph in parsed.subgraphs or []:
        for op in subgraph.operators or []:
            counts[names[op.opcodeIndex]] = counts.get(names[op.opcodeIndex], 0) + 1
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class ArenaEstimate:
    """Working-memory estimate for TFLite Micro (see `estimate_arena` for the method)."""

    peak_activation_bytes: int
    largest_tensor_bytes: int
    tensors: int
    ops: int
    per_channel_bytes: int
    estimate_bytes: int


def _aligned(n: int) -> int:
    return -(-n // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def _tensor_bytes(tensor: Any, type_names: Dict[int, str]) -> int:
    shape = [max(int(d), 1) for d in (tensor.shape if tensor.shape is not None else [])]
    return _aligned(int(np.prod(shape, dtype=np.int64)) * _TYPE_BYTES.get(
        type_names.get(tensor.type, ""), 4))


def _lifetimes(subgraph: Any, constant: List[bool]) -> Dict[int, Tuple[int, int]]:
    """First and last op index at which each non-constant tensor must exist."""
    ops = subgraph.operators or []
    last = max(len(ops) - 1, 0)
    life: Dict[int, Tuple[int, int]] = {}

    def touch(t: int, step: int) -> None:
        if t < 0 or constant[t]:
            return
        first, end = life.get(t, (step, step))
        life[t] = (min(first, step), max(end, step))

    for t in subgraph.inputs if subgraph.inputs is not None else []:
        touch(int(t), 0)
    for step, op in enumerate(ops):
        for t in list(op.inputs if op.inputs is not None else []) + \
                list(op.outputs if op.outputs is not None else []):
            touch(int(t), step)
    for t in subgraph.outputs if subgraph.outputs is not None else []:
        touch(int(t), last)
    for t, tensor in enumerate(subgraph.tensors or []):
        if tensor.isVariable and not constant[t]:
            life[t] = (0, last)  # variable tensors persist across invocations
    return life


def estimate_arena(model: bytes) -> ArenaEstimate:
    """Tensor-arena estimate for TFLite Micro, from a liveness analysis of the main subgraph.

    Method: every non-constant tensor (no data in the flatbuffer) lives from the op that writes
    it (or the start, for inputs) to the last op that reads it (or the end, for outputs). The
    activation peak is the largest sum of 16-byte-aligned sizes alive at any op, a lower bound
    for TFLM's memory planner. The estimate adds ARENA_MARGIN of that peak (planner
    fragmentation, kernel scratch), per-channel quantisation parameters (8 bytes per output
    channel of conv/fully-connected ops), per-tensor and per-op bookkeeping and a fixed
    overhead, rounded up to 1 KiB. Treat it as a starting size: TFLM's
    `MicroInterpreter::arena_used_bytes()` reports the real figure on the target.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    parsed = _parse(model)
    if not parsed.subgraphs:
        raise InputError("the model has no subgraph")
    graph, types = parsed.subgraphs[0], _names(schema.TensorType)
    tensors = graph.tensors or []
    constant = [_has_data(parsed.buffers[t.buffer]) if t.buffer else False for t in tensors]
    sizes = [_tensor_bytes(t, types) for t in tensors]
    life = _lifetimes(graph, constant)
    ops = graph.operators or []
    peak = max((sum(sizes[t] for t, (a, b) in life.items() if a <= step <= b)
                for step in range(max(len(ops), 1))), default=0)
    op_names = _op_names(parsed)
    channels = sum(int(tensors[op.outputs[0]].shape[-1]) for op in ops
                   if op_names[op.opcodeIndex] in _PER_CHANNEL_OPS and len(op.outputs)
                   and tensors[op.outputs[0]].shape is not None
                   and len(tensors[op.outputs[0]].shape))
    per_channel = 8 * channels
    raw = (peak * (1.0 + ARENA_MARGIN) + per_channel + ARENA_BYTES_PER_TENSOR * len(tensors)
           + ARENA_BYTES_PER_OP * len(ops) + ARENA_FIXED_BYTES)
    return ArenaEstimate(peak_activation_bytes=int(peak),
                         largest_tensor_bytes=max((sizes[t] for t in life), default=0),
                         tensors=len(tensors), ops=len(ops), per_channel_bytes=per_channel,
                         estimate_bytes=int(math.ceil(raw / 1024.0) * 1024))


def _has_data(buffer: Any) -> bool:
    data = getattr(buffer, "data", None)
    return (data is not None and len(data) > 0) or getattr(buffer, "offset", 0) > 1
