"""The benchmark's stated targets, judged on one results dict (docs/BENCHMARKS.md "Targets")."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from scripts.bench.common import JITTER
from scripts.bench.metrics import (DEVICE_RATE_HZ, FLEET_DEVICES, TARGET_FLEET_RSS_MIB,
                                   TARGET_INGEST, TARGET_INGEST_INTERLEAVED,
                                   TARGET_KERAS_SPEEDUP, TARGET_RSS_MB,
                                   TARGET_STREAM_OVER_INVOKE, Target,
                                   devices_served, dig as get, fmt_count, fmt_mib,
                                   fmt_ratio, markdown_table, ratio)


def p50(stats: Any) -> Optional[float]:
    """The p50 of a LatencyStats dict (None if missing)."""
    return get(stats, "p50_ms")


def headline_values(res: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """The numbers the targets are judged on (main subject, recommended variant)."""
    main = res["subjects"]["main"]
    rec = get(main, "runtime", "models", main.get("recommended") or "")
    stream, invoke = p50(get(rec, "stream")), p50(get(rec, "invoke"))
    sweep = get(res, "ingest", "sweep", "runs") or []
    biggest = max(sweep, key=lambda r: r["devices"]) if sweep else {}
    tflite_row = next((r for r in res["memory"] if r["label"].endswith("tflite-runtime")), {})
    hwm = get(tflite_row, "memory", "vm_hwm_mib")
    worst = (get(res, "ingest", "interleaved", "runs") or [{}])[0]
    return {"interleaved_cpu": worst.get("samples_per_cpu_s"),
            "interleaved_devices": worst.get("devices"),
            "fleet_rss": fleet_rss(res).get(FLEET_DEVICES[-1]),
            "stream": stream, "invoke": invoke, "stream_jitter": p50(get(rec, "stream_jitter")),
            "keras_predict": p50(get(main, "keras",
            "models", "model", "predict")),
            "ingest_cpu": biggest.get("samples_per_cpu_s"), "ingest_wall":
            biggest.get("samples_per_s"), "ingest_devices": biggest.get("devices"),
            "rss_mb": None if hwm is None else hwm * 1024 * 1024 / 1e6}


def targets(res: Dict[str, Any]) -> List[Target]:
    """The stated targets with this run's measurements (the stream ratio twice: on-grid and
    jittered input)."""
    h = headline_values(res)
    return [
        Target("stream path vs Keras predict (speed-up, p50)",
               ratio(h["keras_predict"], h["stream"]), TARGET_KERAS_SPEEDUP, True, "x"),
        Target("stream path / bare invoke (p50), on-grid timestamps", ratio(h["stream"],
               h["invoke"]), TARGET_STREAM_OVER_INVOKE, False, "x"),
        Target(f"stream path / bare invoke (p50), timestamps jittered ±{JITTER:g} period",
               ratio(h["stream_jitter"], h["invoke"]), TARGET_STREAM_OVER_INVOKE, False, "x"),
        Target(f"daemon ingest per core ({h['ingest_devices']} devices, samples per CPU-s)",
               h["ingest_cpu"], TARGET_INGEST, True, "samples/s"),
        Target("daemon ingest per core, every line a different device "
               f"({h['interleaved_devices']} devices, samples per CPU-s)",
               h["interleaved_cpu"], TARGET_INGEST_INTERLEAVED, True, "samples/s"),
        Target("peak RSS, runtime with tflite-runtime", h["rss_mb"], TARGET_RSS_MB, False, "MB"),
        Target(f"peak RSS, ingest process serving {FLEET_DEVICES[-1]:,} devices (MiB)",
               h["fleet_rss"], TARGET_FLEET_RSS_MIB, False, "MiB"),
    ]


def fleet_rss(res: Dict[str, Any]) -> Dict[int, float]:
    """Peak RSS (MiB) of the fresh ingest process of each fleet size that was measured."""
    out = {}
    for item in (res.get("ingest") or {}).get("fleet") or []:
        runs, hwm = get(item, "runs"), get(item, "memory", "vm_hwm_mib")
        if runs and hwm is not None:
            out[int(runs[0]["devices"])] = hwm
    return out


def _fmt_target(t: Target, value: Optional[float]) -> str:
    if t.unit == "x":
        return fmt_ratio(value)
    return fmt_count(value) if t.unit == "samples/s" else fmt_mib(value)


def section_targets(res: Dict[str, Any]) -> List[str]:
    h = headline_values(res)
    rows = []
    for t in targets(res):
        sign = ">=" if t.higher_is_better else "<="
        rows.append([t.name, f"{sign} {_fmt_target(t, t.limit)}", _fmt_target(t, t.measured),
                     f"**{t.verdict()}**"])
    served = devices_served(h["ingest_cpu"], DEVICE_RATE_HZ)
    return ["## Targets", "", markdown_table(["target", "goal", "measured", "verdict"], rows),
            "", f"One core ingests {fmt_count(h['ingest_cpu'])} samples per CPU-second "
            f"({fmt_count(h['ingest_wall'])} per wall-clock second): "
            f"it keeps up with about **{fmt_count(served)} devices at 50 Hz**.", ""]
