"""Benchmark worker for the alternatives and the model facts: Keras, ONNX Runtime, flatbuffers.

Run by `python -m scripts.bench` in a fresh process per task (protocol in common):
    python -m scripts.bench.alt keras '{"model": "run/model.keras", "n": 300}'
TensorFlow/Keras/onnxruntime are imported inside the tasks that need them, so the `onnx` task
runs in a process that has onnxruntime, numpy and har_runtime's numpy-only timing harness.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from har_runtime.benchmark import summarize, throughput, time_calls
from scripts.bench.common import WARMUP, run_worker
from scripts.bench.metrics import keras_layer_macs, tflite_graph_macs

#: ONNX opset asked of tf2onnx (supported by onnxruntime >= 1.12).
ONNX_OPSET = 17
#: Calibration windows for the int8 conversion of the untrained cost-growth models.
GROWTH_CALIBRATION = 64


def _keras(single_thread: bool = True) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    if single_thread:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    return keras


def keras_macs(model: Any) -> int:
    """MACs per window of a Keras model, summed over its layers (see keras_layer_macs)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        # Merge layers (Add) take a list of tensors; none of them has MACs, any shape will do.
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        total += keras_layer_macs(kind, tuple(inputs[0].shape), tuple(layer.output.shape),
                                  layer.get_config())
    return total


def _windows(shape, batch: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 0.5, (batch,) + tuple(shape)).astype(np.float32)


def keras_timings(keras: Any, path: str, params: Dict[str, Any]) -> Dict[str, Any]:
    """Keras `predict` (the tutorial way; skipped when params["predict"] is false) and direct
    `model(x, training=False)` of one model, at batch 1 and batch `batch`."""
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    n, batch = int(params.get("n", 300)), int(params.get("batch", 64))
    windows = _windows(model.inputs[0].shape[1:], batch)
    one = windows[:1]
    calls = max(3, int(params.get("batch_calls", 20)))
    out = {"call": summarize(time_calls(lambda: model(one, training=False), n,
                                        WARMUP)).to_dict(),
           "throughput_call_b1": throughput(lambda: model(one, training=False), 1, n),
           "throughput_call_batch": throughput(lambda: model(windows, training=False), batch,
                                               calls),
           "params": int(model.count_params()), "macs": keras_macs(model), "name": model.name}
    if params.get("predict", True):
        n_predict = int(params.get("n_predict", max(20, n // 3)))
        predict = lambda: model.predict(one, verbose=0)  # noqa: E731
        out["predict"] = summarize(time_calls(predict, n_predict, WARMUP)).to_dict()
        out["throughput_predict_b1"] = throughput(predict, 1, n_predict)
        out["throughput_predict_batch"] = throughput(
            lambda: model.predict(windows, batch_size=batch, verbose=0), batch, calls)
    return out


def task_keras(params: Dict[str, Any]) -> Dict[str, Any]:
    """`keras_timings` of every named .keras file, on one thread."""
    keras = _keras()
    return {"models": {name: keras_timings(keras, path, params)
                       for name, path in params["models"]}}


def _op_names(parsed: Any) -> List[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [builtin.get(max(c.builtinCode, c.deprecatedBuiltinCode), "?")
            for c in parsed.operatorCodes or []]


def _graph_ops(parsed: Any) -> List[Dict[str, Any]]:
    """The main subgraph's ops as the dicts `tflite_graph_macs` reads."""
    graph, names = parsed.subgraphs[0], _op_names(parsed)
    tensors, out = graph.tensors, []
    for op in graph.operators or []:
        name = names[op.opcodeIndex]
        inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        item: Dict[str, Any] = {"op": name, "output": list(tensors[op.outputs[0]].shape),
                                "weights": None, "block": None}
        if len(inputs) > 1 and inputs[1] >= 0:
            item["weights"] = list(tensors[inputs[1]].shape)
            if name == "SPACE_TO_BATCH_ND":
                data = parsed.buffers[tensors[inputs[1]].buffer].data
                item["block"] = int(np.prod(np.frombuffer(bytes(data), np.int32))) \
                    if data is not None and len(data) else None
        out.append(item)
    return out


def tflite_facts(content: bytes) -> Dict[str, Any]:
    """Ops, MACs per window and TFLite Micro arena estimate of one .tflite flatbuffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    from har_export.model_info import estimate_arena

    ops = _graph_ops(flatbuffer_utils.convert_bytearray_to_object(bytearray(content)))
    counts: Dict[str, int] = {}
    for op in ops:
        counts[op["op"]] = counts.get(op["op"], 0) + 1
    arena = estimate_arena(content)
    return {"size_bytes": len(content), "ops": dict(sorted(counts.items())),
            "macs": tflite_graph_macs(ops), "arena_bytes": arena.estimate_bytes,
            "peak_activation_bytes": arena.peak_activation_bytes}


def task_model_info(params: Dict[str, Any]) -> Dict[str, Any]:
    """`tflite_facts` of every named .tflite file."""
    _keras()
    return {"models": {name: tflite_facts(Path(path).read_bytes())
                       for name, path in params["files"]}}


def task_build_growth(params: Dict[str, Any]) -> Dict[str, Any]:
    """Untrained copies of one architecture for several window lengths, as .keras + .tflite."""
    keras = _keras(single_thread=False)
    from har_export.convert import convert_variants
    from har_train.dataset import make_spec
    from har_train.models import build_model

    out, built = Path(params["out_dir"]), {}
    for window in params["windows"]:
        spec = make_spec(params.get("task", "har6"), params.get("channels", "acc"),
                         window=int(window), hop=int(window) // 2)
        keras.utils.set_random_seed(int(params.get("seed", 0)))
        channels = spec.input_shape[1]
        model = build_model(params["model"], spec, np.zeros(channels), np.ones(channels))
        folder = out / f"w{window}"
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.keras")
        (folder / "spec.json").write_text(spec.to_json(), encoding="utf-8")
        calibration = _windows(spec.input_shape, GROWTH_CALIBRATION)
        files = {}
        for variant, content in convert_variants(model, ("float32", "int8"), calibration).items():
            files[variant] = str(folder / f"model_{variant}.tflite")
            Path(files[variant]).write_bytes(content)
        built[str(window)] = {"dir": str(folder), "files": files,
                              "params": int(model.count_params())}
    return {"model": params["model"], "built": built}


def _tf2onnx(model: Any, out: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        model.export(str(Path(tmp) / "saved"), format="tf_saved_model", verbose=False)
        done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model",
                               str(Path(tmp) / "saved"), "--output", str(out),
                               "--opset", str(ONNX_OPSET)], capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        lines = [ln for ln in done.stderr.splitlines() if "Error" in ln] or ["no output"]
        raise RuntimeError(f"tf2onnx failed: {lines[-1][:200]}")
    import tf2onnx

    return f"tf2onnx {tf2onnx.__version__} (SavedModel, opset {ONNX_OPSET})"


def task_onnx_convert(params: Dict[str, Any]) -> Dict[str, Any]:
    """Keras model -> .onnx with tf2onnx via a SavedModel; Keras' own ONNX export as fallback."""
    keras = _keras(single_thread=False)
    model = keras.models.load_model(params["model"], safe_mode=True, compile=False)
    out = Path(params["out"])
    try:
        how = _tf2onnx(model, out)
    except (RuntimeError, ImportError) as first:
        try:
            model.export(str(out), format="onnx", verbose=False)
        except Exception as second:  # Keras raises whatever its exporter hits
            raise RuntimeError(f"{first}; keras export(format='onnx') also failed: "
                               f"{str(second).splitlines()[0][:200]}") from None
        how = f"keras {keras.__version__} model.export(format='onnx') (tf2onnx failed: {first})"
    return {"path": str(out), "converter": how, "size_bytes": out.stat().st_size,
            "max_abs_diff_vs_keras": _onnx_diff(model, out)}


def _onnx_diff(model: Any, path: Path) -> float:
    """Largest |p_onnx - p_keras| on a few windows: the converted model must be the same one."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    windows = _windows(model.inputs[0].shape[1:], 8)
    got = session.run(None, {session.get_inputs()[0].name: windows})[0]
    return float(np.max(np.abs(got - np.asarray(model(windows, training=False)))))


def task_onnx(params: Dict[str, Any]) -> Dict[str, Any]:
    """ONNX Runtime on one thread (sequential execution): latency and throughput."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(params["model"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    n, batch = int(params.get("n", 1000)), int(params.get("batch", 64))
    windows = _windows((int(params["window"]), int(params["channels"])), batch)
    one = windows[:1]
    run_one = lambda: session.run(None, {name: one})  # noqa: E731
    calls = max(3, int(params.get("batch_calls", 50)))
    return {"run": summarize(time_calls(run_one, n, WARMUP)).to_dict(),
            "throughput_b1": throughput(run_one, 1, n),
            "throughput_batch": throughput(lambda: session.run(None, {name: windows}), batch,
                                           calls),
            "provider": session.get_providers()[0]}


TASKS = {"keras": task_keras, "model_info": task_model_info, "build_growth": task_build_growth,
         "onnx_convert": task_onnx_convert, "onnx": task_onnx}

if __name__ == "__main__":
    sys.exit(run_worker(TASKS))
