"""Per-variant latency and throughput of a bundle's models, and the timing harness behind them.

Latency is one window per call (batch 1), the streaming case; throughput is windows per second
with `batch` windows per call, the catch-up case. Both time `predict_proba`, so they include
the input quantisation and output dequantisation a real caller pays.

The timing primitives (`time_calls`, `time_interleaved`, `throughput`, `summarize`) are the
project's one latency harness: `har-runtime bench` and the lab benchmark (scripts/bench, whose
workers run in venvs that have numpy and har_runtime but maybe no TensorFlow) both use them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from har_runtime.bundle import Bundle
from har_runtime.contract.tiers import TIERS
from har_runtime.recurrent_context import RecurrentHead

#: Untimed calls before `har-runtime bench` measures (first calls allocate and warm caches).
WARMUP = 5


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of per-call times in milliseconds over `n` timed calls."""

    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    def to_dict(self) -> Dict[str, float]:
        """JSON-ready dict."""
        return asdict(self)


def summarize(seconds: Sequence[float]) -> LatencyStats:
    """p50/p99/mean/min of per-call durations given in seconds."""
    t = np.asarray(seconds, dtype=np.float64)
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("need at least one finite, non-negative duration")
    ms = t * 1e3
    return LatencyStats(n=int(t.size), p50_ms=float(np.percentile(ms, 50)),
                        p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()),
                        min_ms=float(ms.min()))


def time_calls(fn: Callable[[], Any], n: int, warmup: int) -> np.ndarray:
    """Durations in seconds of `n` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(n, dtype=np.float64)
    clock = time.perf_counter
    for i in range(n):
        start = clock()
        fn()
        out[i] = clock() - start
    return out


def time_interleaved(fns: Mapping[str, Callable[[], Any]], n: int,
                     warmup: int) -> Dict[str, np.ndarray]:
    """Durations in seconds of `n` calls of each function, taken in turns (one call of each per
    round), so that load changes on a shared machine hit every function alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {name: np.empty(n, dtype=np.float64) for name in fns}
    clock = time.perf_counter
    for i in range(n):
        for name, fn in fns.items():
            start = clock()
            fn()
            out[name][i] = clock() - start
    return out


def throughput(fn: Callable[[], Any], windows_per_call: int, calls: int, blocks: int = 5,
               warmup: int = 3) -> Dict[str, float]:
    """Windows per second of back-to-back calls that each classify `windows_per_call`.

    The calls run in `blocks` timed blocks; the median block rate is reported (with the
    slowest and fastest) so one stall on a shared machine does not decide the number.
    """
    for _ in range(warmup):
        fn()
    per_block = max(1, calls // blocks)
    rates = []
    clock = time.perf_counter
    for _ in range(blocks):
        start = clock()
        for _ in range(per_block):
            fn()
        rates.append(windows_per_call * per_block / (clock() - start))
    return {"batch": windows_per_call, "calls": per_block * blocks,
            "windows_per_s": float(np.median(rates)), "min_windows_per_s": float(min(rates)),
            "max_windows_per_s": float(max(rates))}


@dataclass(frozen=True)
class BenchResult:
    """Timings of one variant."""

    variant: str
    deployable: bool
    size_bytes: int
    interpreter: str
    threads: int
    p50_ms: float
    p99_ms: float
    throughput_wps: float
    batch: int

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def bench_variant(bundle: Bundle, variant: str, iterations: int = 200, batch: int = 64,
                  batches: int = 10, num_threads: int = 1, interpreter: Optional[str] = None,
                  seed: int = 0) -> BenchResult:
    """Time one variant (undeployable ones too: a benchmark only measures speed)."""
    clf = bundle.open(variant, interpreter, num_threads, allow_undeployable=True)
    rng = np.random.default_rng(seed)
    windows = rng.normal(0.0, 0.5, (max(batch, 1),) + bundle.spec.input_shape)
    windows = windows.astype(np.float32)
    one = windows[:1]
    latency = summarize(time_calls(lambda: clf.predict_proba(one), iterations, WARMUP))
    # One timed block of `batches` calls: the figure is their total windows over total time.
    rate = throughput(lambda: clf.predict_proba(windows), windows.shape[0], batches, blocks=1,
                      warmup=WARMUP)
    info = bundle.variants[variant]
    return BenchResult(variant=variant, deployable=info.deployable, size_bytes=info.size_bytes,
                       interpreter=clf.interpreter_name, threads=num_threads,
                       p50_ms=latency.p50_ms, p99_ms=latency.p99_ms,
                       throughput_wps=rate["windows_per_s"], batch=batch)


def bench_bundle(bundle: Bundle, variants: Sequence[str], **kwargs: Any) -> List[BenchResult]:
    """`bench_variant` for each named variant, in order."""
    return [bench_variant(bundle, name, **kwargs) for name in variants]


def format_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width text table of the results."""
    header = (f"{'variant':<12} {'size KiB':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'windows/s':>10}  {'deployable':<10} interpreter")
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.variant:<12} {r.size_bytes / 1024:>9.1f} {r.p50_ms:>8.3f} "
                    f"{r.p99_ms:>8.3f} {r.throughput_wps:>10.0f}  "
                    f"{'yes' if r.deployable else 'no':<10} {r.interpreter} x{r.threads}")
    return "\n".join(rows)


def tier_lines(bundle: Bundle, results: Sequence[BenchResult]) -> List[str]:
    """One line per benchmarked int8 variant judging its median latency against the bundle's
    tier budget (`har_runtime.contract.tiers`); none when the bundle records no known tier or
    the tier sets no latency budget."""
    tier = TIERS.get(bundle.tier or "")
    if tier is None or tier.max_window_ms is None:
        return []
    lines = []
    for r in results:
        if r.variant != "int8":
            continue
        problem = tier.latency_problem(r.p50_ms)
        lines.append(f"tier {tier.name}: " + (problem or f"p50 {r.p50_ms:.3f} ms per window is "
                                              f"within the {tier.max_window_ms:g} ms budget")
                     + f" ({r.interpreter} x{r.threads})")
    return lines


def bench_context(bundle: Bundle, iterations: int = 200,
                  interpreter: Optional[str] = None) -> Optional[LatencyStats]:
    """Latency of one step of the bundle's learned context head (it runs once per window, on
    top of the variant's own call); None when the bundle has no such head."""
    head = bundle.context_runner(interpreter)
    if not isinstance(head, RecurrentHead):
        return None
    k = len(bundle.labels)
    probs, state = [1.0 / k] * k, head.zero_state()
    return summarize(time_calls(lambda: head.step(probs, state), iterations, WARMUP))


def context_line(stats: Optional[LatencyStats]) -> List[str]:
    """The table's extra line for a learned context head, if any."""
    if stats is None:
        return []
    return [f"context head: p50 {stats.p50_ms:.3f} ms, p99 {stats.p99_ms:.3f} ms per window "
            "step (add to the variant's batch-1 latency)"]
