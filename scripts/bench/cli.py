"""Benchmark a bundle against the alternatives; write docs/BENCHMARKS.md and a PNG plot.

From the repository root:

    .venv/bin/python -m scripts.bench [--bundle runs/main/bundle] [--quick]
        [--runtime-python .venv-rt/bin/python] [--litert-python P] [--onnx-python P]

Every measurement runs in a fresh worker process (scripts.bench.rt: the TF-free runtime;
scripts.bench.alt: Keras, ONNX Runtime, flatbuffer facts) in the venv it needs, pinned to one
core, one thread. A missing interpreter skips its column with a note; nothing is estimated in
place of a measurement.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click

from scripts.bench.common import COMMAND
from scripts.bench.plan import Effort, Plan, Runner, machine_info
from scripts.bench.plot import write_plot
from scripts.bench.report import write_markdown


class BenchError(click.ClickException):
    """A benchmark that cannot start (missing bundle, unusable option)."""

    exit_code = 3


def _int_list(text: str, what: str) -> Tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise BenchError(f"{what} must be positive integers, got {text!r}")
    return values


def _check_bundle(bundle: Path) -> None:
    """BenchError unless `bundle` loads (schema and every sha256) in this Python."""
    from har_runtime.bundle import BundleError, load_bundle

    if not (bundle / "bundle.json").is_file():
        raise BenchError(f"no bundle at {bundle} (bundle.json missing); run "
                         "./scripts/run_main.sh or pass --bundle")
    try:
        load_bundle(bundle)
    except BundleError as exc:
        raise BenchError(f"{bundle}: {exc}") from None


def _python(path: Optional[str], what: str) -> Tuple[Optional[str], Optional[str]]:
    """(usable interpreter path, None) or (None, note saying why the column is skipped)."""
    if path is None:
        return None, f"{what}: not measured (no interpreter given)"
    resolved = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    if resolved is None:
        return None, f"{what}: not measured ({path} is not an executable Python)"
    return str(Path(resolved).absolute()), None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bundle", type=click.Path(path_type=Path), default=Path("runs/main/bundle"),
              show_default=True, help="Bundle to measure (every variant).")
@click.option("--keras-model", type=click.Path(path_type=Path), default=None,
              help="Keras model of --bundle [default: model.keras next to the bundle, or in "
                   "the bundle's training run folder].")
@click.option("--mcu-bundle", type=click.Path(path_type=Path), default=None,
              help="Bundle of tiny_dscnn (its model.keras is looked up the same way) [default: "
                   "the main bundle if it is tiny_dscnn, else one trained here on synthetic "
                   "data for 2 epochs, reused from --work-dir on later runs].")
@click.option("--python", "train_python", default=".venv/bin/python", show_default=True,
              help="Python with TensorFlow + Keras + har-edge (Keras timings, conversions).")
@click.option("--runtime-python", default=".venv-rt/bin/python", show_default=True,
              help="Python with tflite-runtime + har-edge and no TensorFlow.")
@click.option("--litert-python", default=None, help="Python with ai-edge-litert + har-edge.")
@click.option("--onnx-python", default=None,
              help="Python with TensorFlow + tf2onnx + onnxruntime + har-edge.")
@click.option("--windows", default="64,128,256", show_default=True,
              help="Window lengths of the cost-growth models.")
@click.option("--devices", default="1,10,100,1000", show_default=True,
              help="Device counts of the ingest runs.")
@click.option("--quick", is_flag=True,
              help="Fewer repetitions: ~2-4 minutes instead of ~6-10 (more on a busy machine).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("build/bench"),
              show_default=True, help="Scratch folder (models built here, raw results.json).")
@click.option("--fresh", is_flag=True, help="Empty --work-dir first (retrain, rebuild).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/BENCHMARKS.md"),
              show_default=True, help="Markdown report to write.")
@click.option("--png", type=click.Path(path_type=Path), default=Path("docs/bench_summary.png"),
              show_default=True, help="Plot to write (needs matplotlib in this Python).")
def main(bundle: Path, keras_model: Optional[Path], mcu_bundle: Optional[Path],
         train_python: str, runtime_python: str, litert_python: Optional[str],
         onnx_python: Optional[str], windows: str, devices: str, quick: bool, work_dir: Path,
         fresh: bool, out: Path, png: Path) -> None:
    """Latency, throughput, memory, size and cost growth of a bundle vs Keras and ONNX Runtime."""
    _check_bundle(bundle)
    notes: List[str] = []
    pythons = {}
    for key, path, what in (("train", train_python, "Keras/TensorFlow columns"),
                            ("runtime", runtime_python, "tflite-runtime columns"),
                            ("litert", litert_python, "ai-edge-litert column"),
                            ("onnx", onnx_python, "ONNX Runtime columns")):
        pythons[key], note = _python(path, what)
        if note:
            notes.append(note)
    if pythons["runtime"] is None:
        raise BenchError(f"--runtime-python {runtime_python} is not usable; the runtime "
                         "columns are the point of this benchmark")
    if fresh and work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join([COMMAND, *(shlex.quote(a) for a in sys.argv[1:])])
    runner = Runner(pythons, notes)
    plan = Plan(runner=runner, effort=Effort.pick(quick), work=work_dir,
                windows=_int_list(windows, "--windows"), devices=_int_list(devices, "--devices"))
    started = time.time()
    results: Dict[str, Any] = {"machine_start": machine_info(), "command": command,
                               "quick": quick}
    results.update(plan.run_all(bundle.absolute(), keras_model, mcu_bundle))
    results["machine_end"] = machine_info()
    results["elapsed_s"] = time.time() - started
    results["notes"] = notes
    results["worker_log"] = runner.log
    (work_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    plot_note = write_plot(results, png)
    write_markdown(results, out, png if plot_note is None else None, plot_note)
    click.echo(f"wrote {out} ({results['elapsed_s']:.0f} s); raw results in "
               f"{work_dir / 'results.json'}")

