"""`har-runtime`: serve a bundle as a streaming daemon, replay recordings, benchmark variants.

Exit codes: 0 ok, 1 unexpected failure, 2 usage, 3 source/sink I/O, 4 bad bundle,
5 bad recording, 6 no TFLite interpreter.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import click

from har_runtime.contract.units import ACC_UNITS, GYRO_UNITS
from har_runtime.daemon.engine import DEVICE_POLICIES, EMIT_CHOICES, EngineSettings
from har_runtime.daemon.lines import DEFAULT_MAX_LINE
from har_runtime.daemon.sources import DEFAULT_MAX_CONNECTIONS
from har_runtime.interpreter import INTERPRETERS

_ENGINE = EngineSettings()


class RuntimeCliError(click.ClickException):
    """Base for har-runtime's one-line errors."""

    exit_code = 1


class IOFailure(RuntimeCliError):
    exit_code = 3


class BadBundle(RuntimeCliError):
    exit_code = 4


class BadRecording(RuntimeCliError):
    exit_code = 5


class NoInterpreter(RuntimeCliError):
    exit_code = 6


def _load_error(exc) -> RuntimeCliError:
    return NoInterpreter(str(exc)) if exc.kind == "interpreter" else BadBundle(str(exc))


def _model_options(func):
    """--variant, --interpreter and --threads, shared by every command."""
    func = click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
                        help="Interpreter threads.")(func)
    func = click.option("--interpreter", type=click.Choice(INTERPRETERS), default=None,
                        help="TFLite interpreter package (default: first importable of "
                             f"{', '.join(INTERPRETERS)}, or $HAR_EDGE_INTERPRETER).")(func)
    return click.option("--variant", default=None,
                        help="Model variant (default: the bundle's recommended one).")(func)


def _smoothing_options(func):
    """Overrides of the bundle's smoothing defaults."""
    func = click.option("--hysteresis", type=click.IntRange(1), default=None,
                        help="Windows a new activity must win before it is reported.")(func)
    func = click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=None,
                        help="Below this smoothed probability the activity is 'unknown'.")(func)
    return click.option("--smoothing-k", type=click.IntRange(1), default=None,
                        help="Windows averaged by the smoother.")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="har-edge")
def main() -> None:
    """On-device activity recognition from a har-export bundle (numpy + TFLite only)."""


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--source", default="stdin", show_default=True,
              help="stdin | file:PATH | tcp:[HOST:]PORT | udp:[HOST:]PORT | "
                   "serial:DEVICE[@BAUD] | http:[HOST:]PORT[?OPTS] (Sensor Logger push) | "
                   "mqtt[s]://[USER:PASS@]HOST[:PORT]/TOPIC[?OPTS]. Network sources bind "
                   "127.0.0.1 unless HOST is given (docs/RUNTIME.md).")
@click.option("--sink", default="stdout", show_default=True,
              help="stdout | file:PATH (append) | mqtt[s]://HOST[:PORT]/BASE[?OPTS] (events, "
                   "Home Assistant discovery).")
@_model_options
@click.option("--acc-unit", type=click.Choice(sorted(ACC_UNITS)), default=_ENGINE.acc_unit,
              show_default=True,
              help="Unit of the incoming accelerometer values.")
@click.option("--gyro-unit", type=click.Choice(sorted(GYRO_UNITS)), default=_ENGINE.gyro_unit,
              show_default=True, help="Unit of the incoming gyroscope values.")
@_smoothing_options
@click.option("--max-devices", type=click.IntRange(1), default=_ENGINE.max_devices,
              show_default=True,
              help="Devices with live state at once.")
@click.option("--device-policy", type=click.Choice(DEVICE_POLICIES),
              default=_ENGINE.device_policy,
              show_default=True, help="At --max-devices: drop the least recently heard device, "
                                      "or refuse the new one's samples.")
@click.option("--device-buffer", type=click.IntRange(1), default=_ENGINE.device_buffer,
              show_default=True,
              help="Samples a device accumulates before they are classified.")
@click.option("--max-line", type=click.IntRange(16, 1 << 20), default=DEFAULT_MAX_LINE,
              show_default=True,
              help="Longest accepted line in bytes; longer lines are counted and skipped.")
@click.option("--max-connections", type=click.IntRange(1, 1024),
              default=DEFAULT_MAX_CONNECTIONS, show_default=True,
              help="Concurrent TCP connections.")
@click.option("--stats-interval", type=click.FloatRange(min=0.0), default=60.0,
              show_default=True, help="Seconds between counter lines on stderr (0: only at exit).")
@click.option("--emit", type=click.Choice(EMIT_CHOICES), default=_ENGINE.emit, show_default=True,
              help="Write every window's prediction, or only activity changes.")
def serve(bundle: Path, source: str, sink: str, variant, interpreter, threads, acc_unit,
          gyro_unit, smoothing_k, min_confidence, hysteresis, max_devices, device_policy,
          device_buffer, max_line, max_connections, stats_interval, emit) -> None:
    """Classify live sensor lines from SOURCE, writing JSON events to SINK.

    Lines are CSV `[device,]t,ax,ay,az[,gx,gy,gz]` or JSON
    `{"t":..,"acc":[..],"gyro":[..],"device":".."}` (see docs/RUNTIME.md). SIGTERM/SIGINT drain
    and exit 0; SIGHUP reloads BUNDLE (a bad one keeps the old model serving).
    """
    from har_runtime.daemon.engine import Engine
    from har_runtime.daemon.model import BundleModelLoader, ModelLoadFailed, SmoothingOverrides
    from har_runtime.daemon.server import Server
    from har_runtime.daemon.sinks import SinkError, open_sink
    from har_runtime.daemon.sources import SourceError, open_source

    loader = BundleModelLoader(bundle, variant, interpreter, threads,
                               SmoothingOverrides(smoothing_k, min_confidence, hysteresis))
    settings = EngineSettings(acc_unit, gyro_unit, max_devices, device_policy, device_buffer, emit)
    try:
        engine = Engine(loader, settings)
    except ModelLoadFailed as exc:
        raise _load_error(exc) from None
    try:
        out = open_sink(sink)
        try:
            src = open_source(source, max_line, max_connections)
        except SourceError:
            out.close()
            raise
        Server(src, engine, out, stats_interval).run()
    except (SourceError, SinkError) as exc:
        raise IOFailure(str(exc)) from None


def _load_recordings(path: str, rate_hz: float, max_gap_s: float) -> list:
    from har_runtime.csvio import CSVFormatError, read_csv_recordings

    kind, colon, arg = path.partition(":")
    if colon and not Path(path).exists():
        raise BadRecording(f"{path}: no such file or folder; replay reads CSV (docs/DATA.md). "
                           f"For a training data source, write it first: har-train to-csv "
                           f"{kind} OUT" + (f" --subject {arg}" if arg.isdigit() else ""))
    try:
        recordings = read_csv_recordings(path, rate_hz=rate_hz, max_gap_s=max_gap_s)
    except CSVFormatError as exc:
        raise BadRecording(str(exc)) from None
    if not recordings:
        raise BadRecording(f"{path}: no samples to replay")
    return recordings


def _open_bundle(bundle: Path, variant, interpreter, threads):
    from har_runtime.daemon.model import BundleModelLoader, ModelLoadFailed

    try:
        return BundleModelLoader(bundle, variant, interpreter, threads)()
    except ModelLoadFailed as exc:
        raise _load_error(exc) from None


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("recording")
@_model_options
@click.option("--speed", type=click.FloatRange(min=0.0, min_open=True), default=1.0,
              show_default=True, help="Replay speed as a multiple of real time.")
@click.option("--fast", is_flag=True, help="As fast as possible (ignores --speed).")
@click.option("--png", "png", type=click.Path(dir_okay=False), default=None,
              help="Write a predicted-vs-true timeline plot here (needs matplotlib).")
def replay(bundle: Path, recording: str, variant, interpreter, threads, speed, fast, png) -> None:
    """Stream RECORDING through BUNDLE and print the activity timeline.

    RECORDING is a CSV file or folder (docs/DATA.md schema); `har-train to-csv hapt OUT
    --subject 2` writes one from a training data source. With labels, window-level accuracy
    against the spec's window labelling rule is printed too.
    """
    from har_runtime.replay import RecordingError, plot_timelines, replay_recording

    model = _open_bundle(bundle, variant, interpreter, threads)
    recordings = _load_recordings(recording, model.spec.sample_rate_hz, model.spec.max_gap_s)
    results = []
    try:
        for rec in recordings:
            res = replay_recording(rec, model.spec, model.classifier, model.smoothing,
                                   None if fast else speed)
            _print_replay(res)
            results.append(res)
    except RecordingError as exc:
        raise BadRecording(str(exc)) from None
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
        raise IOFailure(f"cannot write {path}: {exc.strerror or exc}") from None
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
    from har_runtime.benchmark import bench_bundle, format_table
    from har_runtime.bundle import BundleError, load_bundle
    from har_runtime.interpreter import InterpreterUnavailableError

    try:
        loaded = load_bundle(bundle)
        names: List[str] = list(loaded.variants) if variant == "all" else [variant]
        if variant != "all" and variant not in loaded.variants:
            raise BundleError(f"no variant {variant!r}; it has {sorted(loaded.variants)}")
        results = bench_bundle(loaded, names, iterations=iterations, batch=batch,
                               num_threads=threads, interpreter=interpreter)
    except InterpreterUnavailableError as exc:
        raise NoInterpreter(str(exc)) from None
    except BundleError as exc:
        raise BadBundle(f"{bundle}: {exc}") from None
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        click.echo(format_table(results))


if __name__ == "__main__":
    main()
