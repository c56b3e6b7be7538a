"""Reading the flatbuffer: op inventory and the TFLM tensor-arena estimate (golden int8 model)."""
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from har_export.c_array import c_array_sources  # noqa: E402
from har_export.errors import InputError  # noqa: E402
from har_export.model_info import (ARENA_FIXED_BYTES, ARENA_MARGIN, estimate_arena,  # noqa: E402
                                   op_counts)

pytestmark = pytest.mark.tf
BUNDLE = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"


def _model(variant):
    return (BUNDLE / f"model_{variant}.tflite").read_bytes()


def test_op_counts_list_every_builtin_with_its_uses():
    assert op_counts(_model("int8")) == {"CONV_2D": 2, "EXPAND_DIMS": 2, "FULLY_CONNECTED": 1,
                                         "MEAN": 1, "RESHAPE": 2, "SOFTMAX": 1}
    # float16 weights are stored as float16 and widened by DEQUANTIZE ops at load time.
    assert op_counts(_model("float16"))["DEQUANTIZE"] > 0


def test_arena_peak_is_the_largest_set_of_simultaneously_live_activations():
    arena = estimate_arena(_model("int8"))
    # Peak at the RESHAPE after conv2: its int8 input (1, 1, 29, 32) and output (1, 29, 32).
    assert arena.peak_activation_bytes == 2 * 29 * 32
    assert arena.largest_tensor_bytes == 29 * 32
    assert arena.per_channel_bytes == 8 * (8 + 32 + 6)  # conv1, conv2, dense output channels
    assert arena.estimate_bytes % 1024 == 0
    assert arena.estimate_bytes >= arena.peak_activation_bytes * (1 + ARENA_MARGIN) \
        + ARENA_FIXED_BYTES
    # float32 activations take four times the bytes.
    assert estimate_arena(_model("float32")).peak_activation_bytes == 4 * 2 * 29 * 32


def test_c_array_header_carries_the_estimate_and_gate_verdict():
    files = c_array_sources(_model("int8"), "model_int8", deployable=False)
    header = files["model_int8.h"]
    assert f"#define MODEL_INT8_TENSOR_ARENA_SIZE {estimate_arena(_model('int8')).estimate_bytes}" \
        in header
    assert "Parity gate: FAILED" in header


def test_garbage_is_not_a_flatbuffer():
    with pytest.raises(InputError, match="not a TFLite flatbuffer"):
        op_counts(b"\x00" * 3)
