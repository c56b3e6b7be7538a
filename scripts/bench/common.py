"""Shared pieces of the benchmark workers: the worker protocol, memory, synthetic inputs.

A worker is `python -m scripts.bench.<rt|alt> TASK PARAMS_JSON`, started in the repository
root; it prints one line `BENCH-RESULT <json>` on stdout (everything else on stdout/stderr is
noise to the caller). Only the standard library and numpy are imported here, so every venv can
load this module; the timing itself is har_runtime.benchmark's (the one latency harness).
"""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import traceback
from importlib import metadata
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

RESULT_MARK = "BENCH-RESULT "
#: How the benchmark is started, from the repository root (the report's rerun lines say it).
COMMAND = "python -m scripts.bench"
#: Untimed calls before every timed loop (first calls allocate, JIT and warm caches).
WARMUP = 10
#: Distributions whose versions the report lists, when installed in a worker's venv.
PACKAGES = ("numpy", "tensorflow-cpu", "tensorflow", "keras", "tflite-runtime",
            "ai-edge-litert", "onnxruntime", "tf2onnx", "onnx")
#: Environment that keeps numeric libraries to one thread in a worker process.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                  "TF_CPP_MIN_LOG_LEVEL": "3"}


def pin_to_core(core: Optional[int]) -> Optional[int]:
    """Restrict this process to one CPU (when `core` is allowed here); return the core used."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    chosen = core if core in allowed else min(allowed)
    os.sched_setaffinity(0, {chosen})
    return chosen


def parse_status_kib(text: str, field: str) -> Optional[int]:
    """Value in KiB of a `Field:  1234 kB` line of /proc/PID/status text (None if absent)."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == field:
            parts = rest.split()
            if parts and parts[0].isdigit():
                return int(parts[0])
    return None


def memory_now() -> Dict[str, Optional[float]]:
    """Peak and current resident memory of this process in MiB (VmHWM, VmRSS, ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            status = handle.read()
    except OSError:
        status = ""
    hwm, rss = parse_status_kib(status, "VmHWM"), parse_status_kib(status, "VmRSS")
    return {"vm_hwm_mib": None if hwm is None else hwm / 1024.0,
            "vm_rss_mib": None if rss is None else rss / 1024.0,
            # Linux reports ru_maxrss in KiB.
            "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def versions() -> Dict[str, str]:
    """Python and the installed versions of PACKAGES in this interpreter's environment."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


#: Clock jitter of the "jittered" stream runs, as a fraction of the sample period: timestamps
#: off the resampling grid, as a free-running device clock gives (the on-grid stream, like a
#: recording replayed at the spec rate, takes the resampler's on-grid shortcut).
JITTER = 0.2


def synthetic_stream(seconds: float, rate_hz: float, channels: int, seed: int = 0,
                     jitter: float = 0.0) -> Dict[str, np.ndarray]:
    """Timestamps (n,) and samples (n, channels) of a plausible sensor stream, in g / rad/s;
    `jitter` > 0 moves each timestamp uniformly by up to that fraction of a sample period."""
    n = int(round(seconds * rate_hz))
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64) / rate_hz
    if jitter > 0:
        t = t + rng.uniform(-jitter, jitter, n) / rate_hz
    x = rng.normal(0.0, 0.3, (n, channels)) + np.sin(2 * np.pi * 1.8 * t)[:, None] * 0.5
    x[:, min(2, channels - 1)] += 1.0  # gravity on z
    return {"t": t, "x": x}


def ingest_payload(devices: int, samples_per_device: int, burst: int, channels: int,
                   rate_hz: float = 50.0, seed: int = 0) -> bytes:
    """CSV lines `device,t,v1..vC` for many devices at `rate_hz`, `burst` samples per device in
    a row (1 = strictly interleaved by time, as a gateway relaying live devices would send)."""
    if min(devices, samples_per_device, burst, channels) < 1:
        raise ValueError("devices, samples_per_device, burst and channels must be >= 1")
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.3, (samples_per_device, channels))
    rows = [",".join(f"{v:.4f}" for v in row) for row in values]
    names = [f"dev{d:05d}" for d in range(devices)]
    parts: List[str] = []
    for start in range(0, samples_per_device, burst):
        stop = min(start + burst, samples_per_device)
        for name in names:
            parts.extend(f"{name},{k / rate_hz:.3f},{rows[k]}\n" for k in range(start, stop))
    return "".join(parts).encode("ascii")


def run_worker(tasks: Mapping[str, Callable[[Dict[str, Any]], Dict[str, Any]]]) -> int:
    """Entry point of a worker script: run argv[1] with argv[2] (JSON), print the result."""
    if len(sys.argv) != 3 or sys.argv[1] not in tasks:
        sys.stderr.write(f"usage: {sys.argv[0]} {{{','.join(tasks)}}} PARAMS_JSON\n")
        return 2
    try:
        params = json.loads(sys.argv[2])
        core = pin_to_core(params.get("core"))
        result = tasks[sys.argv[1]](params)
        result.setdefault("core", core)
        result.setdefault("versions", versions())
    except Exception as exc:  # report any failure as data: the caller marks the column
        traceback.print_exc(file=sys.stderr)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = {"error": f"{type(exc).__name__}: {first}"[:300]}
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0
