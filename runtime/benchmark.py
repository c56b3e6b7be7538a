"""Per-variant latency and throughput of a bundle's models on this machine.

Latency is one window per call (batch 1), the streaming case; throughput is windows per second
with `batch` windows per call, the catch-up case. Both time `predict_proba`, so they include
the input quantisation and output dequantisation a real caller pays.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from har_runtime.bundle import Bundle

#: Untimed calls before measuring (first calls allocate and warm caches).
WARMUP = 5


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
    for _ in range(WARMUP):
        clf.predict_proba(one)
    times = np.empty(iterations)
    for i in range(iterations):
        start = time.perf_counter()
        clf.predict_proba(one)
        times[i] = time.perf_counter() - start
    for _ in range(WARMUP):
        clf.predict_proba(windows)
    start = time.perf_counter()
    for _ in range(batches):
        clf.predict_proba(windows)
    elapsed = time.perf_counter() - start
    info = bundle.variants[variant]
    return BenchResult(variant=variant, deployable=info.deployable, size_bytes=info.size_bytes,
                       interpreter=clf.interpreter_name, threads=num_threads,
                       p50_ms=float(np.percentile(times, 50) * 1e3),
                       p99_ms=float(np.percentile(times, 99) * 1e3),
                       throughput_wps=batches * windows.shape[0] / elapsed, batch=batch)


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
