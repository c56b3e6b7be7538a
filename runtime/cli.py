"""`har-runtime`: serve a bundle as a streaming daemon, replay recordings, benchmark variants.

Exit codes come from the shared table (`har_runtime.exit_codes`, docs/CONTRACTS.md); `ERRORS`
maps the library's errors to them.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import List, Sequence

import click
from click.core import ParameterSource

from har_runtime.bundle import BundleError
from har_runtime.csvio import CSVFormatError
from har_runtime.daemon.model import ModelLoadFailed
from har_runtime.daemon.settings import KEYS, SettingsError, load_settings
from har_runtime.daemon.sinks import SinkError
from har_runtime.daemon.sources import SourceError
from har_runtime.exit_codes import BadData, ExitCode, IOFailed, MappedGroup
from har_runtime.interpreter import INTERPRETERS, InterpreterUnavailableError
from har_runtime.replay import RecordingError


def _load_failure(exc: ModelLoadFailed) -> ExitCode:
    return ExitCode.NO_INTERPRETER if exc.kind == "interpreter" else ExitCode.BAD_MODEL


#: The library's errors and the exit code each one ends a command with.
ERRORS = {ModelLoadFailed: _load_failure, InterpreterUnavailableError: ExitCode.NO_INTERPRETER,
          BundleError: ExitCode.BAD_MODEL, CSVFormatError: ExitCode.BAD_DATA,
          RecordingError: ExitCode.BAD_DATA, SourceError: ExitCode.IO_FAILED,
          SinkError: ExitCode.IO_FAILED, SettingsError: ExitCode.BAD_INPUT}


def _model_options(func):
    """--variant, --interpreter and --threads, shared by every command."""
    func = click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
                        help="Interpreter threads.")(func)
    func = click.option("--interpreter", type=click.Choice(INTERPRETERS), default=None,
                        help="TFLite interpreter package (default: first importable of "
                             f"{', '.join(INTERPRETERS)}, or $HAR_EDGE_INTERPRETER).")(func)
    return click.option("--variant", default=None,
                        help="Model variant (default: the bundle's recommended one).")(func)


def _setting(name: str):
    """A serve flag overriding settings key NAME, with the key's type, default and help."""
    key = KEYS[name]
    return click.option(f"--{name.replace('_', '-')}", name, type=key.metadata["kind"],
                        default=key.default, show_default=key.default is not None,
                        help=key.metadata["doc"])


@click.group(cls=MappedGroup, errors=ERRORS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="har-edge", prog_name="har-runtime")
def main() -> None:
    """On-device activity recognition from a har-export bundle (numpy + TFLite only)."""


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML settings file for everything else: units, smoothing, limits, "
                   "stats interval (docs/RUNTIME.md). Flags given here override it.")
@_setting("source")
@_setting("sink")
@_model_options
@_setting("emit")
@_setting("acc_unit")
@_setting("gyro_unit")
@_setting("time_unit")
@click.pass_context
def serve(ctx: click.Context, bundle: Path, config, **flags) -> None:
    """Classify live sensor lines from SOURCE, writing JSON events to SINK.

    Lines are CSV `[device,]t,ax,ay,az[,gx,gy,gz]` or JSON
    `{"t":..,"acc":[..],"gyro":[..],"device":".."}` (see docs/RUNTIME.md). SIGTERM/SIGINT drain
    and exit 0; SIGHUP reloads BUNDLE (a bad one keeps the old model serving).
    """
    from har_runtime.daemon.engine import Engine
    from har_runtime.daemon.model import BundleModelLoader
    from har_runtime.daemon.server import Server
    from har_runtime.daemon.sinks import open_sink
    from har_runtime.daemon.sources import open_source

    given = {name: value for name, value in flags.items()
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    settings = replace(load_settings(config), **given)
    loader = BundleModelLoader(bundle, settings.variant, settings.interpreter, settings.threads,
                               settings.smoothing())
    engine = Engine(loader, settings.engine())
    out = open_sink(settings.sink)
    try:
        src = open_source(settings.source, settings.max_line, settings.tcp())
    except SourceError:
        out.close()
        raise
    Server(src, engine, out, settings.stats_interval).run()


#: har-train's data source kinds (har_train.data.sources; the runtime cannot import it).
_TRAINING_SOURCES = ("hapt", "uci", "synthetic")


def source_hint(path: str, bundle: Path) -> str:
    """For a training data source given where replay wants CSV: the two commands that replay it
    (`hapt:N`, the old syntax, is subject N of hapt); "" for anything else."""
    kind, _, arg = path.partition(":")
    if kind not in _TRAINING_SOURCES:
        return ""
    subject = arg if kind == "hapt" and arg.isdigit() else ""
    folder = "runs/" + "-".join(part for part in re.split(r"[^\w.]+", path) if part)
    to_csv = (f"har-train to-csv {shlex.quote(kind if subject else path)} {folder}"
              + (f" --subject {subject}" if subject else ""))
    return (f". For a training data source, write it as CSV first: {to_csv}; then: "
            f"har-runtime replay {shlex.quote(str(bundle))} {folder} --fast")


def _load_recordings(path: str, spec, bundle: Path, acc_unit: str, gyro_unit: str) -> list:
    from har_runtime.csvio import read_csv_recordings

    hint = source_hint(path, bundle)
    if hint and not Path(path).exists():
        raise BadData(f"{path}: no such file or folder; replay reads CSV (docs/DATA.md)" + hint)
    recordings = read_csv_recordings(path, acc_unit, gyro_unit, rate_hz=spec.sample_rate_hz,
                                     max_gap_s=spec.max_gap_s)
    if not recordings:
        raise BadData(f"{path}: no samples to replay")
    return recordings


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("recording")
@_model_options
@click.option("--speed", type=click.FloatRange(min=0.0, min_open=True), default=1.0,
              show_default=True, help="Replay speed as a multiple of real time.")
@click.option("--fast", is_flag=True, help="As fast as possible (ignores --speed).")
@click.option("--png", "png", type=click.Path(dir_okay=False), default=None,
              help="Write a predicted-vs-true timeline plot here (needs matplotlib).")
@click.option("--acc-unit", type=KEYS["acc_unit"].metadata["kind"], default="g",
              show_default=True, help="Unit of the CSV's accelerometer columns.")
@click.option("--gyro-unit", type=KEYS["gyro_unit"].metadata["kind"], default="rad/s",
              show_default=True, help="Unit of the CSV's gyroscope columns.")
def replay(bundle: Path, recording: str, variant, interpreter, threads, speed, fast, png,
           acc_unit, gyro_unit) -> None:
    """Stream RECORDING through BUNDLE and print the activity timeline.

    RECORDING is a CSV file or folder (docs/DATA.md schema); `har-train to-csv hapt OUT
    --subject 2` writes one from a training data source. With labels, window-level accuracy
    against the spec's window labelling rule is printed too.
    """
    from har_runtime.daemon.model import BundleModelLoader
    from har_runtime.replay import plot_timelines, replay_recording

    model = BundleModelLoader(bundle, variant, interpreter, threads)()
    recordings = _load_recordings(recording, model.spec, bundle, acc_unit, gyro_unit)
    results = []
    for rec in recordings:
        res = replay_recording(rec, model.spec, model.classifier, model.smoothing,
                               None if fast else speed)
        _print_replay(res)
        results.append(res)
    _print_overall(results)
    if png:
        _write_png(results, model.spec.labels, png, plot_timelines)


def _print_replay(res) -> None:
    click.echo(f"{res.name}: {res.counters.samples_in} samples, {len(res.predictions)} windows")
    for seg in res.timeline:
        click.echo(f"  {seg.start:9.2f} - {seg.end:9.2f} s  {seg.activity}")
    if res.accuracy is not None:
        click.echo(f"  accuracy {res.accuracy:.3f} (window), {res.smoothed_accuracy:.3f} "
                   f"(smoothed) over {res.scored} labelled windows")


def _print_overall(results: Sequence) -> None:
    scored = sum(r.scored for r in results)
    if len(results) > 1 and scored:
        acc = sum(r.accuracy * r.scored for r in results if r.scored) / scored
        smooth = sum(r.smoothed_accuracy * r.scored for r in results if r.scored) / scored
        click.echo(f"overall accuracy {acc:.3f} (window), {smooth:.3f} (smoothed) over "
                   f"{scored} labelled windows in {len(results)} recordings")


def _write_png(results: Sequence, labels: Sequence[str], path: str, plot) -> None:
    try:
        plot(results, labels, path)
    except ImportError:
        click.echo("note: matplotlib is not installed; no PNG written", err=True)
        return
    except OSError as exc:
        raise IOFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"timeline plot: {path}")


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--variant", default="all", show_default=True,
              help="Variant to time, or 'all'.")
@click.option("--interpreter", type=click.Choice(INTERPRETERS), default=None,
              help="TFLite interpreter package (default: first importable).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Interpreter threads.")
@click.option("--iterations", type=click.IntRange(10), default=200, show_default=True,
              help="Timed batch-1 calls per variant.")
@click.option("--batch", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Windows per call for the throughput figure.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(bundle: Path, variant: str, interpreter, threads, iterations, batch, as_json) -> None:
    """Latency (p50/p99 at batch 1) and throughput of BUNDLE's variants on this machine."""
    from har_runtime.benchmark import (bench_bundle, bench_context, context_line, format_table,
                                       tier_lines)
    from har_runtime.bundle import load_bundle

    loaded = load_bundle(bundle)
    names: List[str] = list(loaded.variants) if variant == "all" else [variant]
    if variant != "all" and variant not in loaded.variants:
        raise BundleError(f"{bundle}: no variant {variant!r}; it has {sorted(loaded.variants)}")
    results = bench_bundle(loaded, names, iterations=iterations, batch=batch,
                           num_threads=threads, interpreter=interpreter)
    head = bench_context(loaded, iterations, interpreter)
    if as_json:
        # Each variant's record carries the head's step timing: both run for every window.
        click.echo(json.dumps([{**r.to_dict(), "context_head": head.to_dict() if head else None}
                               for r in results], indent=2))
    else:
        click.echo("\n".join([format_table(results), *tier_lines(loaded, results),
                              *context_line(head)]))


if __name__ == "__main__":
    main()
