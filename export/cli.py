"""`har-export`: convert a trained run to a TFLite bundle behind an accuracy-parity gate."""
from __future__ import annotations

import os
from pathlib import Path

import click

from har_export.context_export import ContextParityError
from har_export.convert import DEFAULT_CALIBRATION_SIZE, VARIANTS, parse_variants
from har_export.errors import ConversionError, InputError, OptionError
from har_export.inspect_bundle import describe_bundle
from har_export.parity import ParityThresholds, format_table
from har_export.pipeline import ExportOptions, export_model, open_bundle, verify_bundle
from har_export.tflog import quiet_tensorflow_env
from har_runtime.exit_codes import ExitCode, MappedGroup, ParityFailed

#: The export library's errors and the exit code each one ends a command with.
ERRORS = {OptionError: ExitCode.BAD_INPUT, InputError: ExitCode.BAD_MODEL,
          ConversionError: ExitCode.CONVERSION_FAILED,
          ContextParityError: ExitCode.PARITY_FAILED}

THRESHOLD_HELP = ("Override a gate limit, VARIANT.FIELD=VALUE (repeatable), e.g. "
                  "int8.min_agreement=0.98 or float32.max_abs_diff=none. Fields: min_agreement, "
                  "max_abs_diff, max_accuracy_drop (fractions: 0.01 = one point); none turns "
                  "off max_abs_diff or max_accuracy_drop, never min_agreement.")


@click.group(cls=MappedGroup, errors=ERRORS, codes=[ExitCode.PARITY_FAILED],
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="har-edge", prog_name="har-export")
def cli() -> None:
    """Export trained har-edge models to TFLite bundles."""


@cli.command(help="Convert RUN/model.keras into a bundle folder of TFLite variants.\n\n"
                  f"Exits {int(ExitCode.PARITY_FAILED)} when a variant fails the parity gate "
                  "(it is written with deployable=false); every exit code: har-export --help.")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle folder to create.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Training run folder (default: the folder holding MODEL).")
@click.option("--variants", "variants", multiple=True,
              help="Variants to build, comma-separated or repeated "
                   "(float32,float16,dynamic,int8; default all).")
@click.option("--calibration-size", type=click.IntRange(min=1),
              default=DEFAULT_CALIBRATION_SIZE, show_default=True,
              help="Training-subject windows (class-balanced) used to calibrate int8.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for picking the calibration windows.")
@click.option("--input-range-percentile", type=click.FloatRange(0, 100), default=0.0,
              show_default=True,
              help="Give each channel its own int8 input range, covering this percentile (e.g. "
                   "99.9) of its standardised calibration values, for heavy-tailed channels; "
                   "folded into the float standardisation and the first convolution, so the "
                   "float model is unchanged. 0: one range for every channel.")
@click.option("--threshold", "--thresholds", "thresholds", multiple=True, help=THRESHOLD_HELP)
@click.option("--recommend", type=click.Choice(list(VARIANTS)),
              help="Recommend this variant if it passes the gate (default: first deployable "
                   "of int8, dynamic, float16, float32).")
@click.option("--c-array", is_flag=True, help="Also write model_int8.cc/.h for TFLite Micro.")
@click.option("--keep-tensor-names", is_flag=True,
              help="Keep tensor names and the signature in the .tflite files, for Netron or "
                   "TF's QuantizationDebugger. By default they are stripped: same outputs, "
                   "6-22 % smaller files.")
@click.option("--posture-context", is_flag=True,
              help="Ship the causal posture tracker (temporal context over the window outputs, "
                   "run by the runtime; docs/BUNDLE.md) in the bundle.")
@click.option("--context", "context_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Ship the learned temporal-context head of this `har-train context` folder "
                   "(a GRU over the window outputs, float32; it must pass its own parity gate "
                   f"or nothing is written, exit {int(ExitCode.PARITY_FAILED)}).")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle folder.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show TensorFlow's converter logs (by default kept back; the last lines "
                   "are shown when a conversion fails).")
def convert(model, out, run_dir, variants, calibration_size, seed, input_range_percentile,
            thresholds, recommend, c_array, keep_tensor_names, posture_context, context_dir,
            overwrite, verbose) -> None:
    """Thin wrapper over har_export.pipeline.export_model."""
    options = ExportOptions(
        variants=parse_variants(variants) if variants else VARIANTS,
        calibration_size=calibration_size, seed=seed,
        input_range_percentile=input_range_percentile or None,
        thresholds=ParityThresholds().with_overrides(thresholds), recommend=recommend,
        c_array=c_array, keep_tensor_names=keep_tensor_names, overwrite=overwrite,
        posture_context=posture_context, context_dir=context_dir)
    result = export_model(model, out, options, run_dir=run_dir, verbose=verbose,
                          progress=lambda message: click.echo(message, err=True))
    click.echo(format_table(result.report))
    click.echo(f"bundle written to {result.bundle} (recommended: {result.recommended})")
    if not result.report.passed:
        raise ParityFailed(f"variant(s) {', '.join(result.report.failed())} failed the parity "
                           "gate; written with deployable=false")


@cli.command(help="Re-run the parity gate on an existing bundle.\n\nUses the run folder recorded "
                  "in bundle.json unless --run is given; the run's model.keras must be the one "
                  f"the bundle came from. Exits {int(ExitCode.PARITY_FAILED)} when a variant "
                  "marked deployable fails now.")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Training run folder (default: the one bundle.json records).")
@click.option("--threshold", "--thresholds", "thresholds", multiple=True, help=THRESHOLD_HELP)
def verify(bundle, run_dir, thresholds) -> None:
    """Thin wrapper over har_export.pipeline.verify_bundle."""
    result = verify_bundle(bundle, run_dir=run_dir, overrides=thresholds)
    click.echo(format_table(result.report))
    known = [n for n in result.report.failed() if n not in result.regressions]
    if known:
        click.echo(f"already marked not deployable: {', '.join(known)}")
    if result.regressions:
        raise ParityFailed(f"deployable variant(s) {', '.join(result.regressions)} fail the "
                           "parity gate now")
    click.echo(f"{bundle}: every deployable variant passes the gate")


@cli.command(help="Show a bundle's labels, preprocessing, I/O, ops, sizes and parity.")
@click.argument("bundle", type=click.Path(path_type=Path))
def inspect(bundle) -> None:
    """Thin wrapper over har_export.inspect_bundle.describe_bundle."""
    click.echo(describe_bundle(open_bundle(bundle)))


def main() -> None:
    """Console entry point (`har-export`)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    quiet_tensorflow_env()
    cli()
