"""What `python -m scripts.bench` measures, in which venv, in which order; how a worker is called.

`Runner.call` starts one worker process (fresh interpreter, one thread, pinned by the worker)
and returns its JSON result, or `{"error": reason}`, which the report prints as the reason a
cell is empty. `Plan.run_all` walks the whole benchmark and returns one JSON-ready dict.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from har_runtime.exit_codes import ExitCode
from scripts import REPO
from scripts.bench.common import ONE_THREAD_ENV, RESULT_MARK
from scripts.bench.metrics import FLEET_DEVICES

#: Architectures the cost-growth models can be built as (har_train.models registry names).
GROWTH_MODELS = ("seed_cnn", "resnet1d", "tiny_dscnn")
MCU_MODEL = "tiny_dscnn"
MCU_DATA, MCU_EPOCHS = "synthetic:0", 2
#: Samples each ingest device sends per burst: 1 s at 50 Hz, as a gateway forwards a packet.
INGEST_BURST = 50
WORKER_TIMEOUT_S = 600
#: The package of the worker modules (rt, alt), run with `python -m` from the repository root.
WORKERS = "scripts.bench"


def _cpu_seconds() -> Dict[str, Optional[float]]:
    """Busy CPU-seconds of the whole machine (/proc/stat) and of this process tree so far."""
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF,
              resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
        ticks = [int(v) for v in fields[:8]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = None
    return {"machine_busy_s": busy, "own_cpu_s": own, "wall": time.time()}


def machine_info() -> Dict[str, Any]:
    """CPU model, core counts, load, kernel and CPU-time counters of this machine."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {"cpu": model, "cores": os.cpu_count(), "affinity": affinity,
            "load_avg": [round(v, 2) for v in os.getloadavg()],
            "kernel": platform.release(), "machine": platform.machine(), **_cpu_seconds()}


@dataclass(frozen=True)
class Effort:
    """Repetitions of each measurement; `quick` trades spread for a ~2-minute run."""

    n_tflite: int
    n_keras: int
    n_predict: int
    ingest_samples: int
    memory_seconds: float
    batch_calls: int
    #: Most devices in the strictly interleaved ingest run (its rate is ~8x lower, so slow).
    interleaved_devices: int

    @classmethod
    def pick(cls, quick: bool) -> "Effort":
        """The default or the --quick repetitions."""
        if quick:
            return cls(n_tflite=300, n_keras=60, n_predict=20, ingest_samples=30_000,
                       memory_seconds=120.0, batch_calls=10, interleaved_devices=100)
        return cls(n_tflite=2000, n_keras=300, n_predict=100, ingest_samples=150_000,
                   memory_seconds=600.0, batch_calls=50, interleaved_devices=1000)


@dataclass
class Runner:
    """Starts workers with the venv Python chosen for each role ("train", "runtime", ...)."""

    pythons: Dict[str, Optional[str]]
    notes: List[str]
    log: List[str] = field(default_factory=list)

    def call(self, role: str, worker: str, task: str, params: Dict[str, Any],
             timeout: int = WORKER_TIMEOUT_S) -> Dict[str, Any]:
        """Run worker module `worker` ("rt" or "alt": scripts/bench/WORKER.py) on `task params`
        with the role's Python; its result or {"error": why}."""
        python = self.pythons.get(role)
        if python is None:
            return {"error": f"no {role} Python given"}
        env = {**os.environ, **ONE_THREAD_ENV}
        started = time.monotonic()
        try:
            done = subprocess.run([python, "-m", f"{WORKERS}.{worker}", task,
                                   json.dumps(params)],
                                  capture_output=True, text=True, timeout=timeout, env=env,
                                  cwd=REPO)
        except subprocess.TimeoutExpired:
            return self._fail(task, f"timed out after {timeout} s")
        finally:
            took = time.monotonic() - started
            self.log.append(f"{worker} {task} ({role}): {took:.1f} s")
            print(f"[bench] {self.log[-1]}", file=sys.stderr, flush=True)
        marked = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
        if not marked:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return self._fail(task, f"worker exited {done.returncode}: {tail[:200]}")
        result = json.loads(marked[-1][len(RESULT_MARK):])
        if "error" in result:
            return self._fail(task, result["error"])
        return result

    def _fail(self, task: str, why: str) -> Dict[str, Any]:
        self.notes.append(f"{task}: {why}")
        return {"error": why}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_keras_model(bundle: Path, doc: Dict[str, Any],
                     given: Optional[Path]) -> Tuple[Optional[Path], str]:
    """The Keras model the bundle was exported from (hash-checked when the bundle records it)."""
    training = doc.get("training") or {}
    if given is not None and not given.is_file():
        return None, f"--keras-model {given} does not exist"
    candidates = [given] if given else [bundle.parent / "model.keras"]
    if not given and training.get("run_dir"):
        candidates.append(Path(training["run_dir"]) / "model.keras")
    for path in candidates:
        if path is None or not path.is_file():
            continue
        recorded = training.get("model_sha256")
        if recorded and _sha256(path) != recorded:
            return None, f"{path} is not the model this bundle was exported from (sha256)"
        return path.absolute(), f"{path}"
    return None, "no Keras model found next to the bundle (pass --keras-model)"


@dataclass
class Plan:
    """The benchmark: which worker runs which measurement with how many repetitions."""

    runner: Runner
    effort: Effort
    work: Path
    windows: Tuple[int, ...]
    devices: Tuple[int, ...]

    def __post_init__(self) -> None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.core = cores[0]
        self.client_core = cores[1] if len(cores) > 1 else cores[0]

    def run_all(self, bundle: Path, keras_model: Optional[Path],
                mcu_bundle: Optional[Path]) -> Dict[str, Any]:
        """Every measurement; a JSON-ready dict for scripts.bench.report."""
        doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        subjects = {"main": self.subject(bundle, keras_model, "the bundle given (--bundle)")}
        mcu = self.mcu_bundle(bundle, doc, mcu_bundle)
        if mcu is not None:
            subjects["mcu"] = self.subject(mcu[0], None, mcu[1])
        main = subjects["main"]
        variant = doc.get("recommended") or next(iter(doc["variants"]))
        breakdown = self.runner.call("runtime", "rt", "breakdown", {
            "bundle": str(bundle), "variant": variant, "n": self.effort.n_tflite // 2,
            "devices": max(self.devices), "core": self.core})
        return {"subjects": subjects, "breakdown": breakdown, "memory": self.memory(bundle, main),
                "ingest": self.ingest(bundle), "growth": self.growth(doc),
                "cores": {"measure": self.core, "client": self.client_core}}

    def subject(self, bundle: Path, keras_model: Optional[Path], source: str) -> Dict[str, Any]:
        """Runtime, Keras and ONNX timings plus flatbuffer facts of one bundle."""
        doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        keras_path, keras_note = find_keras_model(bundle, doc, keras_model)
        e, call = self.effort, self.runner.call
        files = [[v, str(bundle / info["file"])] for v, info in doc["variants"].items()]
        out: Dict[str, Any] = {
            "bundle": str(bundle), "source": source, "recommended": doc.get("recommended"),
            "model": (doc.get("training") or {}).get("config", {}).get("model", "?"),
            "data": (doc.get("training") or {}).get("data", "?"),
            "spec": doc["spec"], "keras_note": keras_note,
            "keras_model": None if keras_path is None else str(keras_path),
            "runtime": call("runtime", "rt", "latency", {
                "bundle": str(bundle), "n": e.n_tflite,
                "batch": 64, "batch_calls": e.batch_calls, "core": self.core}),
            "info": call("train", "alt", "model_info", {"files": files})}
        if keras_path is None:
            out["keras"] = out["onnx"] = {"error": keras_note}
            return out
        out["keras"] = call("train", "alt", "keras", {
            "models": [["model", str(keras_path)]], "n": e.n_keras, "n_predict": e.n_predict,
            "batch_calls": max(3, e.batch_calls // 5), "core": self.core})
        out["onnx"] = self.onnx(keras_path, doc["spec"], bundle.name)
        return out

    def onnx(self, keras_path: Path, spec: Dict[str, Any], stem: str) -> Dict[str, Any]:
        """Convert with tf2onnx (or Keras' exporter) and time ONNX Runtime on one thread."""
        if self.runner.pythons.get("onnx") is None:
            return {"error": "no onnx Python given"}
        target = self.work / "onnx" / f"{stem}-{_sha256(keras_path)[:12]}.onnx"
        record = target.with_suffix(".json")
        if target.is_file() and record.is_file():  # same Keras bytes: the conversion is reused
            conv = json.loads(record.read_text(encoding="utf-8"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            conv = self.runner.call("onnx", "alt", "onnx_convert",
                                    {"model": str(keras_path), "out": str(target)})
            if "error" in conv:
                return conv
            record.write_text(json.dumps(conv), encoding="utf-8")
        timing = self.runner.call("onnx", "alt", "onnx", {
            "model": conv["path"], "window": spec["window"], "channels": len(spec["channels"]),
            "n": self.effort.n_tflite, "batch_calls": self.effort.batch_calls,
            "core": self.core})
        return {**timing, "convert": conv}

    def mcu_bundle(self, bundle: Path, doc: Dict[str, Any],
                   given: Optional[Path]) -> Optional[Tuple[Path, str]]:
        """(bundle, how it was obtained) of the MCU-class model; None if the main one is it."""
        if given is not None:
            if not (given / "bundle.json").is_file():
                self.runner.notes.append(f"--mcu-bundle {given}: bundle.json missing; skipped")
                return None
            return given.absolute(), "given with --mcu-bundle"
        if (doc.get("training") or {}).get("config", {}).get("model") == MCU_MODEL:
            self.runner.notes.append(f"MCU-class model: the main bundle is {MCU_MODEL}; "
                                     "its tables above are the MCU numbers")
            return None
        run, out = self.work / "mcu" / "run", self.work / "mcu" / "bundle"
        trained = (f"trained by this script: `har-train fit --model {MCU_MODEL} --data "
                   f"{MCU_DATA} --epochs {MCU_EPOCHS}` + `har-export convert` (accuracy "
                   "meaningless; speed and size are what is measured)")
        if (out / "bundle.json").is_file():
            return out.absolute(), trained + "; reused from --work-dir"
        return self._train_mcu(run, out, trained)

    def _train_mcu(self, run: Path, out: Path, how: str) -> Optional[Tuple[Path, str]]:
        python = self.runner.pythons.get("train")
        if python is None:
            self.runner.notes.append("MCU model: not trained (no train Python)")
            return None
        steps = (("har_train", ["fit", "--model", MCU_MODEL, "--data", MCU_DATA, "--epochs",
                                str(MCU_EPOCHS), "--out", str(run), "--overwrite"]),
                 ("har_export", ["convert", str(run / "model.keras"), "--out", str(out),
                                 "--overwrite"]))
        for package, args in steps:
            print(f"[bench] {package} {args[0]} ({MCU_MODEL})", file=sys.stderr, flush=True)
            done = subprocess.run([python, "-c", f"from {package}.cli import main; main()",
                                   *args], capture_output=True, text=True, cwd=REPO,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode not in (0, ExitCode.PARITY_FAILED):  # failing variants are written
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                self.runner.notes.append(f"MCU model: {package} {args[0]} failed: {tail}")
                return None
        return out.absolute(), how

    def memory(self, bundle: Path, main: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Peak RSS of fresh processes classifying the same stream with each stack."""
        base = {"bundle": str(bundle), "seconds": self.effort.memory_seconds}
        keras = main["keras_model"] if "error" not in main.get("keras", {"error": 1}) else None
        onnx = main.get("onnx", {}).get("convert", {}).get("path")
        rows = [("python + numpy + har_runtime, no model (floor)", "floor (no model)",
                 "runtime", {"floor": True}),
                ("har_runtime + tflite-runtime", "tflite-runtime", "runtime",
                 {"interpreter": "tflite_runtime"}),
                ("har_runtime + ai-edge-litert", "ai-edge-litert", "litert",
                 {"interpreter": "ai_edge_litert"}),
                ("har_runtime + TensorFlow's tf.lite interpreter", "TF tf.lite", "train",
                 {"interpreter": "tensorflow", "import_tf": True})]
        if keras:
            rows.append(("Keras model(x) (TensorFlow imported)", "Keras model(x)", "train",
                         {"keras_model": keras, "import_tf": True}))
        if onnx:
            rows.append(("har_runtime + onnxruntime (ONNX model)", "onnxruntime", "onnx",
                         {"onnx_model": onnx}))
        return [{"label": label, "short": short, "role": role,
                 **self.runner.call(role, "rt", "memory", {**base, **extra})}
                for label, short, role, extra in rows]

    def ingest(self, bundle: Path) -> Dict[str, Any]:
        """Daemon ingest over loopback TCP for each device count (+ sample-interleaved worst)."""
        base = {"bundle": str(bundle), "samples": self.effort.ingest_samples,
                "core": self.core, "client_core": self.client_core, "timeout_s": 300}
        sweep = self.runner.call("runtime", "rt", "ingest",
                                 {**base, "burst": INGEST_BURST,
                                  "device_counts": list(self.devices)})
        worst_devices = min(max(self.devices), self.effort.interleaved_devices)
        worst = self.runner.call("runtime", "rt", "ingest",
                                 {**base, "burst": 1, "device_counts": [worst_devices]})
        # One fresh process per count: its peak RSS is that fleet's, not the sweep's largest.
        fleet = [self.runner.call("runtime", "rt", "ingest",
                                  {**base, "burst": INGEST_BURST, "device_counts": [d]})
                 for d in FLEET_DEVICES]
        return {"sweep": sweep, "interleaved": worst, "fleet": fleet, "burst": INGEST_BURST}

    def growth(self, doc: Dict[str, Any]) -> Dict[str, Any]:
        """Cost as the window grows: untrained copies of the main architecture per length."""
        arch = (doc.get("training") or {}).get("config", {}).get("model")
        arch = arch if arch in GROWTH_MODELS else MCU_MODEL
        call, e = self.runner.call, self.effort
        built = call("train", "alt", "build_growth", {
            "model": arch, "windows": list(self.windows),
            "out_dir": str((self.work / "growth" / arch).absolute())})
        if "error" in built:
            return {"model": arch, "error": built["error"]}
        runtime, keras_models, files = {}, [], []
        for window, item in built["built"].items():
            runtime[window] = call("runtime", "rt", "latency", {
                "spec": str(Path(item["dir"]) / "spec.json"), "n": e.n_tflite // 2,
                "models": sorted(item["files"].items()), "batch_calls": e.batch_calls // 2,
                "core": self.core})
            keras_models.append([window, str(Path(item["dir"]) / "model.keras")])
            files += [[f"{window}/{v}", p] for v, p in sorted(item["files"].items())]
        keras = call("train", "alt", "keras", {
            "models": keras_models, "n": e.n_keras // 2, "predict": False, "batch_calls": 3,
            "core": self.core})
        info = call("train", "alt", "model_info", {"files": files})
        return {"model": arch, "built": built["built"], "runtime": runtime, "keras": keras,
                "info": info}
