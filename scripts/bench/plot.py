"""docs/bench_summary.png: latency per path, cost growth, ingest vs devices, peak memory."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from scripts.bench.common import COMMAND
from scripts.bench.metrics import (DEVICE_RATE_HZ, TARGET_INGEST, TARGET_RSS_MB,
                                   devices_served, dig as _get)

MIB_PER_MB = 1e6 / (1024 * 1024)


def _latency_bars(res: Dict[str, Any]) -> List[Tuple[str, float]]:
    s = res["subjects"]["main"]
    rec = _get(s, "runtime", "models", s.get("recommended") or "")
    k = _get(s, "keras", "models", "model")
    bars = [("bare invoke", _get(rec, "invoke", "p50_ms")),
            ("predict_proba", _get(rec, "predict", "p50_ms")),
            ("stream path", _get(rec, "stream", "p50_ms")),
            ("ONNX Runtime", _get(s, "onnx", "run", "p50_ms")),
            ("Keras call", _get(k, "call", "p50_ms")),
            ("Keras predict", _get(k, "predict", "p50_ms"))]
    return [(label, v) for label, v in bars if v is not None]


def _panel_latency(ax: Any, res: Dict[str, Any]) -> None:
    bars = _latency_bars(res)
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("p50 ms per window (log)")
    ax.set_title(f"Per-window latency, batch 1 ({res['subjects']['main'].get('recommended')})")
    for i, (_, v) in enumerate(bars):
        ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)


def _panel_growth(ax: Any, res: Dict[str, Any]) -> None:
    g = res["growth"]
    if "error" in g:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
        return
    windows = sorted(g["built"], key=int)
    series = [("invoke float32", lambda w: _get(g, "runtime", w, "models", "float32", "invoke")),
              ("invoke int8", lambda w: _get(g, "runtime", w, "models", "int8", "invoke")),
              ("stream float32", lambda w: _get(g, "runtime", w, "models", "float32", "stream")),
              ("Keras call", lambda w: _get(g, "keras", "models", w, "call"))]
    for label, pick in series:
        pts = [(int(w), _get(pick(w), "p50_ms")) for w in windows]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(w) for w in windows])
    ax.set_xticklabels(windows)
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("window length (samples)")
    ax.set_ylabel("p50 ms (log)")
    ax.set_title(f"Cost growth with window ({g['model']})")
    ax.legend(fontsize=8)


def _panel_ingest(ax: Any, res: Dict[str, Any]) -> None:
    runs = _get(res, "ingest", "sweep", "runs") or []
    if runs:
        x = [r["devices"] for r in runs]
        ax.plot(x, [r["samples_per_cpu_s"] for r in runs], marker="o", label="per CPU-second")
        ax.plot(x, [r["samples_per_s"] for r in runs], marker="s", label="per wall second")
    ax.axhline(TARGET_INGEST, color="tab:red", linestyle="--",
               label=f"target {TARGET_INGEST:,.0f}/s")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated devices")
    ax.set_ylabel("samples/s, one core")
    ax.set_title("Daemon ingest (loopback TCP)")
    ax.legend(fontsize=8, loc="center right")
    if runs:
        best = max(r["samples_per_cpu_s"] for r in runs)
        ax.text(0.02, 0.75, f"best: {devices_served(best, DEVICE_RATE_HZ):,.0f} devices "
                f"at {DEVICE_RATE_HZ:g} Hz per core", transform=ax.transAxes, fontsize=8)


def _panel_memory(ax: Any, res: Dict[str, Any]) -> None:
    rows = [(r.get("short", r["label"]), _get(r, "memory", "vm_hwm_mib")) for r in res["memory"]]
    rows = [(label, v) for label, v in rows if v is not None]
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color="tab:green")
    ax.axvline(TARGET_RSS_MB * MIB_PER_MB, color="tab:red", linestyle="--",
               label=f"target {TARGET_RSS_MB:g} MB")
    ax.set_xlabel("peak RSS MiB (VmHWM)")
    ax.set_title("Memory of a process classifying a stream")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8)


def write_plot(res: Dict[str, Any], png: Path) -> Optional[str]:
    """Write the 2x2 summary figure; return None, or why it could not be written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"matplotlib is not installed in the Python running `{COMMAND}`"
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    _panel_latency(axes[0][0], res)
    _panel_growth(axes[0][1], res)
    _panel_ingest(axes[1][0], res)
    _panel_memory(axes[1][1], res)
    fig.suptitle("har-edge benchmarks (one core, one thread; see docs/BENCHMARKS.md)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return None
