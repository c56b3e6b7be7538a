"""Benchmark worker for the TF-free runtime: interpreter latency, stream path, memory, ingest.

Run by `python -m scripts.bench` in a fresh process per task (see common for the protocol):
    python -m scripts.bench.rt latency '{"bundle": "...", "n": 1000, ...}'
Nothing here imports TensorFlow unless a memory task asks for it (`import_tf` / `keras_model`).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from har_runtime.benchmark import summarize, throughput, time_interleaved
from scripts import REPO
from scripts.bench.common import (JITTER, WARMUP, ingest_payload, memory_now, run_worker,
                                  synthetic_stream)

#: Packages whose presence in a process decides its memory; the report lists those loaded.
HEAVY_MODULES = ("tflite_runtime", "ai_edge_litert", "tensorflow", "keras", "onnxruntime")
#: Seconds of stream each memory process classifies (one-second chunks, as a device sends).
MEMORY_STREAM_S = 600.0


def loaded_heavy() -> List[str]:
    """The HEAVY_MODULES this process has imported."""
    return [name for name in HEAVY_MODULES if name in sys.modules]


def _targets(params: Dict[str, Any]) -> Tuple[Any, Any, List[Tuple[str, Callable[[], Any]]]]:
    """(spec, smoothing, [(name, open classifier)]) from a bundle or from bare .tflite files."""
    from har_runtime.contract.smoothing import DEFAULT_SMOOTHING
    from har_runtime.contract.spec import PreprocessSpec
    from har_runtime.interpreter import TFLiteClassifier

    interp = params.get("interpreter")
    if params.get("bundle"):
        from har_runtime.bundle import load_bundle

        bundle = load_bundle(params["bundle"])
        names = params.get("variants") or list(bundle.variants)
        opens = [(v, lambda v=v: bundle.open(v, interp, 1, allow_undeployable=True))
                 for v in names]
        return bundle.spec, bundle.smoothing, opens
    spec = PreprocessSpec.from_json(Path(params["spec"]).read_text(encoding="utf-8"))
    opens = [(name, lambda p=path: TFLiteClassifier(p, 1, interp))
             for name, path in params["models"]]
    return spec, DEFAULT_SMOOTHING, opens


def hop_feeder(spec: Any, fn: Callable[[np.ndarray, np.ndarray], Any], calls: int,
               seed: int = 1, jitter: float = 0.0) -> Callable[[], Any]:
    """Prime `fn` with one window of a synthetic stream, then return a no-argument callable
    that hands `fn` the next hop (times, samples) per call, for up to `calls` calls."""
    seconds = (spec.window + spec.hop * (calls + 1)) / spec.sample_rate_hz
    data = synthetic_stream(seconds, spec.sample_rate_hz, len(spec.channels), seed=seed,
                            jitter=jitter)
    t, x = data["t"], data["x"]
    fn(t[:spec.window], x[:spec.window])
    cursor = [spec.window]

    def feed() -> Any:
        a = cursor[0]
        cursor[0] = a + spec.hop
        return fn(t[a:a + spec.hop], x[a:a + spec.hop])

    return feed


def stream_pusher(spec: Any, clf: Any, smoothing: Any, calls: int,
                  jitter: float = 0.0) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(push one hop into a StreamClassifier, check that every push made one prediction)."""
    from har_runtime.stream import StreamClassifier

    stream = StreamClassifier(spec, clf, smoothing)
    made = [0]

    def push(t: np.ndarray, x: np.ndarray) -> None:
        made[0] += len(stream.push(t, x))

    feed = hop_feeder(spec, push, calls, jitter=jitter)
    pushes = [0]

    def one_hop() -> None:
        feed()
        pushes[0] += 1

    def check() -> None:
        # One per hop plus the priming window; a jittered clock may still hold back the last
        # window's newest frame until the next sample arrives.
        expected = pushes[0] + 1
        if not expected - (jitter > 0) <= made[0] <= expected:
            raise RuntimeError(f"stream path made {made[0]} predictions for "
                               f"{expected} windows")

    return one_hop, check


def _measure_model(spec: Any, smoothing: Any, clf: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """Bare invoke, predict_proba and the stream path timed in turns, then throughput."""
    n, batch = int(params.get("n", 1000)), int(params.get("batch", 64))
    rng = np.random.default_rng(0)
    windows = rng.normal(0.0, 0.5, (batch,) + spec.input_shape).astype(np.float32)
    one = windows[:1]
    clf.set_input(one)
    push, check = stream_pusher(spec, clf, smoothing, n + WARMUP)
    push_jit, check_jit = stream_pusher(spec, clf, smoothing, n + WARMUP, jitter=JITTER)
    # predict_proba and the streams leave a batch-1 tensor in place, which invoke_raw then runs.
    times = time_interleaved({"invoke": clf.invoke_raw,
                              "predict": lambda: clf.predict_proba(one), "stream": push,
                              "stream_jitter": push_jit}, n, WARMUP)
    check()
    check_jit()
    out = {name: summarize(t).to_dict() for name, t in times.items()}
    out["throughput_b1"] = throughput(lambda: clf.predict_proba(one), 1, n)
    out["throughput_batch"] = throughput(lambda: clf.predict_proba(windows), batch,
                                         max(3, int(params.get("batch_calls", 50))))
    return {"interpreter": clf.interpreter_name, **out}


def task_latency(params: Dict[str, Any]) -> Dict[str, Any]:
    """Bare invoke, predict_proba, stream push and throughput for every model asked for."""
    spec, smoothing, opens = _targets(params)
    results = {}
    for name, open_model in opens:
        results[name] = _measure_model(spec, smoothing, open_model(), params)
    return {"window": spec.window, "hop": spec.hop, "models": results}


class _KerasClassifier:
    """A Keras model behind the runtime's Classifier protocol (direct call, no predict())."""

    def __init__(self, path: str):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras

        self._model = keras.models.load_model(path, safe_mode=True, compile=False)
        self.interpreter_name = f"keras {keras.__version__}"

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray(self._model(windows, training=False), dtype=np.float32)


class _OnnxClassifier:
    """An ONNX model in ONNX Runtime (one thread) behind the Classifier protocol."""

    def __init__(self, path: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._name = self._session.get_inputs()[0].name
        self.interpreter_name = f"onnxruntime {ort.__version__}"

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(None, {self._name: windows})[0], dtype=np.float32)


def _memory_classifier(params: Dict[str, Any]) -> Tuple[Any, Any, Any]:
    from har_runtime.bundle import load_bundle

    if params.get("import_tf"):
        import tensorflow  # noqa: F401 - the point: measure a process that carries TensorFlow

        tensorflow.config.threading.set_intra_op_parallelism_threads(1)
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    bundle = load_bundle(params["bundle"])
    if params.get("keras_model"):
        return bundle.spec, bundle.smoothing, _KerasClassifier(params["keras_model"])
    if params.get("onnx_model"):
        return bundle.spec, bundle.smoothing, _OnnxClassifier(params["onnx_model"])
    return bundle.spec, bundle.smoothing, bundle.open(params.get("variant"),
                                                      params.get("interpreter"), 1, True)


def task_memory(params: Dict[str, Any]) -> Dict[str, Any]:
    """Peak RSS of a fresh process that classifies a stream (or only imports, `floor`)."""
    if params.get("floor"):
        import har_runtime.stream  # noqa: F401 - numpy + the runtime's Python code, no model

        return {"memory": memory_now(), "predictions": 0, "interpreter": "none",
                "loaded": loaded_heavy()}
    from har_runtime.stream import StreamClassifier

    spec, smoothing, clf = _memory_classifier(params)
    seconds = float(params.get("seconds", MEMORY_STREAM_S))
    data = synthetic_stream(seconds, spec.sample_rate_hz, len(spec.channels), seed=2)
    stream = StreamClassifier(spec, clf, smoothing)
    step = int(spec.sample_rate_hz)
    made = 0
    for a in range(0, data["t"].size, step):
        made += len(stream.push(data["t"][a:a + step], data["x"][a:a + step]))
    return {"memory": memory_now(), "predictions": made, "seconds": seconds,
            "interpreter": getattr(clf, "interpreter_name", "?"), "loaded": loaded_heavy()}


def task_ingest_client(params: Dict[str, Any]) -> Dict[str, Any]:
    """Send the CSV payload to the daemon's TCP port on 127.0.0.1 as fast as TCP allows."""
    payload = ingest_payload(int(params["devices"]), int(params["samples_per_device"]),
                             int(params["burst"]), int(params["channels"]))
    with socket.create_connection(("127.0.0.1", int(params["port"])), timeout=60) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
    return {"bytes": len(payload)}


def _serve(engine: Any, source: Any, sink: Any, expected: int, deadline: float) -> Dict[str, Any]:
    """The daemon's data path (`Server._pump`: poll -> engine.feed -> sink.write) until every
    line is in; times from the first received byte."""
    start = cpu0 = None
    while engine.counters.lines < expected and time.monotonic() < deadline:
        for rx in source.poll(0.2):
            if start is None:
                start, cpu0 = time.perf_counter(), time.process_time()
            sink.write(engine.feed(rx))
    if start is None:
        raise RuntimeError("the ingest client sent nothing")
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu0}


def ingest_once(params: Dict[str, Any], devices: int) -> Dict[str, Any]:
    """One loopback run: a client process sends `devices` interleaved streams to the engine."""
    from har_runtime.daemon.engine import Engine, EngineSettings
    from har_runtime.daemon.lines import DEFAULT_MAX_LINE
    from har_runtime.daemon.model import BundleModelLoader
    from har_runtime.daemon.sinks import StreamSink
    from har_runtime.daemon.tcp_source import TcpSource

    loader = BundleModelLoader(Path(params["bundle"]), params.get("variant"),
                               params.get("interpreter"))
    engine = Engine(loader, EngineSettings(max_devices=max(64, devices)))
    spec = engine.model.spec
    per_device = max(int(params["samples"]) // devices, spec.window + 2 * spec.hop)
    source = TcpSource("127.0.0.1", 0, DEFAULT_MAX_LINE)
    client_params = {"port": source.address[1], "devices": devices, "burst": params["burst"],
                     "samples_per_device": per_device, "channels": len(spec.channels),
                     "core": params.get("client_core")}
    client = subprocess.Popen([sys.executable, "-m", "scripts.bench.rt", "ingest_client",
                               json.dumps(client_params)],
                              stdout=subprocess.DEVNULL, cwd=REPO)
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        sink = StreamSink(devnull)  # events are serialised to JSON, as on stdout
        try:
            timing = _serve(engine, source, sink, devices * per_device,
                            time.monotonic() + float(params.get("timeout_s", 120)))
        finally:
            client.wait(timeout=30)
            source.close()
    c, s = engine.counters, engine.stream_totals()
    return {"devices": devices, "burst": params["burst"], "samples": c.samples,
            "malformed": c.malformed, "predictions": s.predictions, **timing,
            "samples_per_s": c.samples / timing["wall_s"],
            "samples_per_cpu_s": c.samples / max(timing["cpu_s"], 1e-9)}


def task_ingest(params: Dict[str, Any]) -> Dict[str, Any]:
    """`ingest_once` for every device count, in one process; plus its peak RSS at the end."""
    runs = [ingest_once(params, int(d)) for d in params["device_counts"]]
    return {"runs": runs, "memory": memory_now()}


def stream_parts(spec: Any, smoothing: Any, clf: Any, n: int) -> Dict[str, float]:
    """p50 ms of each stage of the stream path on hop-sized inputs, timed in turns with the
    whole path so that all of them see the same machine load."""
    from har_runtime.contract.resample import StreamResampler
    from har_runtime.contract.smoothing import Smoother
    from har_runtime.contract.windowing import Windower
    from har_runtime.stream import StreamClassifier

    calls = n + WARMUP
    resampler, windower = StreamResampler(spec.sample_rate_hz, spec.max_gap_s), Windower(spec)
    # The stream hands the smoother each window's probabilities as a list of floats.
    smoother, probs = Smoother(spec.labels, smoothing), [1.0 / spec.num_classes] * spec.num_classes
    one = np.zeros((1,) + spec.input_shape, np.float32)
    whole, check = stream_pusher(spec, clf, smoothing, calls)
    units = StreamClassifier(spec, clf, smoothing)  # the stream's own unit step, sender in g

    def convert(t: np.ndarray, x: np.ndarray) -> np.ndarray:
        scale = units._unit_scale()  # noqa: SLF001 - the step as the stream runs it
        return x if scale is None else x * scale

    stages = {
        "units (the stream's cached scale; none for g)": hop_feeder(spec, convert, calls),
        "StreamResampler.push": hop_feeder(spec, resampler.push, calls),
        "Windower.push": hop_feeder(spec, lambda t, x: windower.push(x), calls),
        "TFLiteClassifier.predict_proba": lambda: clf.predict_proba(one),
        "of which bare invoke": clf.invoke_raw,
        "Smoother.update": lambda: smoother.update(probs),
        "StreamClassifier.push (whole path)": whole}
    times = time_interleaved(stages, n, WARMUP)
    check()
    return {name: summarize(t).p50_ms for name, t in times.items()}


def ingest_parts(params: Dict[str, Any], devices: int) -> Dict[str, float]:
    """CPU µs per line of LineParser.parse and of parse_block alone, and of Engine.feed (no
    socket) per sample."""
    from har_runtime.daemon.engine import Engine, EngineSettings
    from har_runtime.daemon.lines import DEFAULT_MAX_LINE, LineParser, LineSplitter
    from har_runtime.daemon.model import BundleModelLoader
    from har_runtime.daemon.sources import Received

    engine = Engine(BundleModelLoader(Path(params["bundle"]), params.get("variant")),
                    EngineSettings(max_devices=max(64, devices)))
    spec = engine.model.spec
    payload = ingest_payload(devices, spec.window + 2 * spec.hop, 50, len(spec.channels))
    splitter = LineSplitter(DEFAULT_MAX_LINE)
    batches = [splitter.feed(payload[i:i + 65536]) for i in range(0, len(payload), 65536)]
    lines = [line for batch in batches for line in batch]
    parser = LineParser(spec.channels)
    start = time.process_time()
    for line in lines:
        parser.parse(line)
    parse_s = time.process_time() - start
    start = time.process_time()
    for batch in batches:
        parser.parse_block(batch)
    block_s = time.process_time() - start
    start = time.process_time()
    for batch in batches:
        engine.feed(Received(batch, "tcp:127.0.0.1", time.perf_counter()))
    feed_s = time.process_time() - start
    return {"lines": len(lines), "parse_us_per_line": parse_s / len(lines) * 1e6,
            "parse_block_us_per_line": block_s / len(lines) * 1e6,
            "feed_us_per_sample": feed_s / engine.counters.samples * 1e6, "devices": devices}


def task_breakdown(params: Dict[str, Any]) -> Dict[str, Any]:
    """Where the time goes: stream-path stages and the ingest path's parse vs the rest."""
    spec, smoothing, opens = _targets({**params, "variants": [params["variant"]]})
    clf = opens[0][1]()
    return {"variant": params["variant"],
            "stream_ms": stream_parts(spec, smoothing, clf, int(params.get("n", 1000))),
            "ingest": ingest_parts(params, int(params.get("devices", 1000)))}


TASKS = {"latency": task_latency, "breakdown": task_breakdown, "memory": task_memory,
         "ingest": task_ingest, "ingest_client": task_ingest_client}

if __name__ == "__main__":
    sys.exit(run_worker(TASKS))
