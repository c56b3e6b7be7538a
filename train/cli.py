"""`har-train`: train, evaluate and list HAR models (thin click layer over har_train.fit).

Exit codes come from the shared table (`har_runtime.exit_codes`, docs/CONTRACTS.md); `ERRORS`
maps the library's errors to them.

Keras is imported only inside commands: the backend is fixed when Keras first loads, and
`main` must get the chance to default KERAS_BACKEND first.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Optional

import click

from har_runtime.contract.spec import ACC_MODES, CHANNEL_SETS, SpecError
from har_runtime.contract.units import ACC_UNITS, GYRO_UNITS
from har_runtime.exit_codes import BadInput, BadModel, ExitCode, MappedGroup
from har_train.config import TASK_CHOICES, TrainConfig
from har_train.context_head import HeadConfig
from har_train.data.sources import SOURCES_HELP
from har_train.errors import DataError
from har_train.errors import ConfigError, RunExistsError
from har_train.errors import ModelError
from har_train.fit import train
from har_train.kfold import cross_validate
from har_train.models import MODELS
from har_train.presets import PRESETS, make_config


#: The library's one-line errors and the exit code each one ends a command with.
ERRORS = {DataError: ExitCode.BAD_DATA, ConfigError: ExitCode.BAD_INPUT,
          ModelError: ExitCode.BAD_INPUT, SpecError: ExitCode.BAD_INPUT,
          RunExistsError: ExitCode.BAD_INPUT}


def _parse_subjects(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        subjects = tuple(int(s) for s in value.replace(" ", "").split(",") if s)
    except ValueError:
        raise click.BadParameter("use comma-separated subject numbers, e.g. 3,7,11") from None
    if not subjects:
        raise click.BadParameter("name at least one subject")
    return subjects


@click.group(cls=MappedGroup, errors=ERRORS, codes=[ExitCode.BAD_MODEL],
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="har-edge", prog_name="har-train")
def cli() -> None:
    """Train human-activity-recognition models and write run folders for har-export."""


def _parse_duration(ctx, param, value: Optional[str]):
    """Samples ("26") or seconds ("2.56s"), checked here so a typo is a usage error."""
    if value is None:
        return None
    from har_train.config import parse_duration
    from har_train.errors import ConfigError

    try:
        return parse_duration(param.name, value)
    except ConfigError:
        raise click.BadParameter("use samples (e.g. 26) or seconds (e.g. 2.56s), > 0") from None


@cli.command("fit")
@click.option("--data", help=f"Data source: {SOURCES_HELP}. [default: hapt]")
@click.option("--task", type=click.Choice(list(TASK_CHOICES)), help="Label set: har6, hapt12, "
              "or data (the classes the data names or holds). [default: har6; data when a "
              "CSV's label column names its classes]")
@click.option("--channels", type=click.Choice(sorted(CHANNEL_SETS)),
              help="Sensor channels. [default: acc]")
@click.option("--rate", "rate_hz", type=click.FloatRange(min=0, min_open=True), metavar="HZ",
              help="Resample CSV data to HZ. [default: the files' own rate]")
@click.option("--window", callback=_parse_duration, metavar="N|Ss",
              help="Window length in samples (128) or seconds (2.56s). [default: 2.56 s at "
                   "the rate, rounded to samples]")
@click.option("--hop", callback=_parse_duration, metavar="N|Ss",
              help="Samples (or seconds) between window starts. [default: half the window]")
@click.option("--acc-unit", type=click.Choice(sorted(ACC_UNITS)),
              help="Unit of a CSV's ax, ay, az. [default: g]")
@click.option("--gyro-unit", type=click.Choice(sorted(GYRO_UNITS)),
              help="Unit of a CSV's gx, gy, gz. [default: rad/s]")
@click.option("--acc-mode", type=click.Choice(ACC_MODES),
              help="Accelerometer as recorded (total), gravity removed (body), or both. "
                   "[default: total]")
@click.option("--model", type=click.Choice(sorted(MODELS)), help="Architecture (see "
              "`har-train models`). [default: seed_cnn]")
@click.option("--preset", type=click.Choice(sorted(PRESETS)),
              help="Named settings (see `har-train presets`); explicit options override it.")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (early stopping "
              "on validation loss may end sooner).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Training windows per step. "
              "[default: 64, or smaller so an epoch has at least 32 steps on few windows]")
@click.option("--bn-momentum", type=click.FloatRange(0, 1, max_open=True),
              help="BatchNorm moving-average momentum. [default: 0.99, lower when an epoch "
                   "has fewer than 32 steps]")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
              help="Initial learning rate.")
@click.option("--seed", type=int, help="Seed for weights, shuffling and augmentation.")
@click.option("--augment/--no-augment", default=None,
              help="Random sensor rotation, gain and jitter on training windows.")
@click.option("--class-weight/--no-class-weight", default=None,
              help="Weight classes inversely to their training frequency.")
@click.option("--context", type=click.IntRange(min=0), metavar="SAMPLES",
              help="Also feed the model the SAMPLES before each window (history: its input "
              "grows to SAMPLES + window; labels and the device's prediction times do not "
              "change). Helps tell apart activities that differ in what came before, e.g. "
              "sit-to-lie vs stand-to-lie. [default: 0]")
@click.option("--train-hop", type=click.IntRange(min=1), help="Cut training windows every N "
              "samples instead of the spec's hop (more overlapping windows; validation, test "
              "and the device keep the spec's hop). Must not exceed the hop.")
@click.option("--teacher", multiple=True, type=click.Path(path_type=str),
              help="Distil from this run folder (repeat for an ensemble): its softmax on the "
              "training windows is mixed into the labels. Same preprocessing as the student, and "
              "it must not have trained on the student's validation or test subjects; with "
              "--kfold, a k-fold folder of the same k.")
@click.option("--distill-weight", type=click.FloatRange(0, 1, min_open=True),
              help="Share of the teacher in each target (the rest is the one-hot label). "
              "[default: 0.5]")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True))
@click.option("--input-clip", type=click.FloatRange(min=0), metavar="SIGMA",
              help="Saturate the standardised input at +-SIGMA standard deviations inside the "
              "model, as a full-int8 input does, so int8 and float agree on extreme windows "
              "(har-export calibrates to the same range). 0: no clip. [default: 0]")
@click.option("--qat/--no-qat", default=None, help="Quantisation-aware training: fake int8 "
              "quantisation of activations with tracked ranges, which the int8 export takes.")
@click.option("--qat-from", type=click.Path(path_type=str), metavar="RUN",
              help="With --qat: start from RUN's trained model (QAT fine-tuning).")
@click.option("--patience", type=click.IntRange(min=1), help="Early-stopping patience (epochs).")
@click.option("--val-subjects", callback=_parse_subjects,
              help="Validation subjects, e.g. 3,7,11 (default: a CSV's split column, else 3 "
                   "seeded picks from the non-test subjects).")
@click.option("--test-subjects", callback=_parse_subjects,
              help="Test subjects, e.g. 5,9 (default: UCI HAR's for hapt/uci/synthetic; a "
                   "CSV's split column, else 20 % of its subjects, seeded).")
@click.option("--kfold", type=click.IntRange(min=2), help="Leave-subjects-out K-fold over the "
              "non-test subjects instead of one run; reports mean ± std validation accuracy.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Run folder. [default: runs/<preset or model>-<task>-<channels>-s<seed>]")
@click.option("--overwrite", is_flag=True, help="Replace the run files in a non-empty --out.")
def fit_command(out: Optional[Path], overwrite: bool, kfold: Optional[int], preset, **options):
    """Train a model on the training subjects, select it on validation subjects, score it once
    on the test subjects, and write a run folder.

    Batch size and BatchNorm momentum adapt to the number of training windows, rate and
    window to the data (options given here win); both are printed and recorded."""
    if options.get("distill_weight") is not None and not options.get("teacher"):
        raise BadInput("--distill-weight needs --teacher (the runs to distil from)")
    config = make_config(preset, options)
    out = out or _default_out(config)
    if kfold is not None:
        _report_kfold(cross_validate(config, kfold, out, overwrite))
        return
    result = train(config, out, overwrite)
    test = result.metrics["test"]
    click.echo(f"test subjects {result.metrics['test_subjects']}: accuracy "
               f"{test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} ({test['n']} windows)")
    click.echo(f"report: {out / 'metrics.json'} (plots: confusion_matrix.png, "
               "training_curves.png)")
    click.echo(export_hint(out))


def export_hint(run_dir: Path) -> str:
    """The command that exports a run folder, as fit and ensemble print it."""
    return (f"next: har-export convert {shlex.quote(str(run_dir / 'model.keras'))} "
            f"--out {shlex.quote(str(run_dir / 'bundle'))}")


def _default_out(config: TrainConfig) -> Path:
    name = config.preset or config.model
    return Path("runs") / f"{name}-{config.task}-{config.channels}-s{config.seed}"


def _report_kfold(result) -> None:
    for i, acc in enumerate(result.val_accuracies, start=1):
        click.echo(f"fold {i}: validation accuracy {acc:.4f}")
    click.echo(f"{len(result.folds)}-fold validation accuracy: {result.mean:.4f} ± "
               f"{result.std:.4f}")
    click.echo(f"report: {result.out_dir / 'kfold.json'}")


@cli.command("ensemble")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Run folder for the merged model.")
@click.option("--overwrite", is_flag=True, help="Replace the run files in a non-empty --out.")
def ensemble_command(runs, out: Path, overwrite: bool) -> None:
    """Merge two or more runs of one recipe (say, three seeds of a preset) into one model that
    averages their softmax, scored on the same subjects and exportable like any run.

    The runs must share preprocessing, data and subject split (train them with only --seed
    changed). Example: har-train ensemble runs/a runs/b runs/c --out runs/abc"""
    from har_train.ensemble import merge_runs

    result = merge_runs(runs, out, overwrite)
    test = result.metrics["test"]
    click.echo(f"{result.metrics['model']} ({result.metrics['params']:,} params); test subjects: "
               f"accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")
    click.echo(f"report: {out / 'metrics.json'}")
    click.echo(export_hint(out))


@cli.command("context")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--oof", "kfold_dir", required=True, type=click.Path(path_type=Path),
              help="k-fold folder of the same recipe (har-train fit --kfold K): its fold models' "
                   "outputs on the subjects they never saw train the head.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for context.keras and context.json. [default: RUN_DIR/context]")
@click.option("--hidden", type=click.IntRange(1, 512), default=HeadConfig.hidden,
              show_default=True, help="GRU state size (must differ from the class count).")
@click.option("--epochs", type=click.IntRange(1), default=HeadConfig.epochs, show_default=True,
              help="Epochs of random stream crops; the lowest validation loss is kept.")
@click.option("--seed", type=int, default=HeadConfig.seed, show_default=True)
@click.option("--oof-variant", metavar="VARIANT", default=None, help="Take the out-of-fold outputs from this variant of each fold's "
              "bundle (FOLD/bundle, made by har-export convert) instead of its Keras model, so "
              "the head learns from what the device's file outputs.")
@click.option("--overwrite", is_flag=True, help="Replace the files in a non-empty --out.")
def context_command(run_dir: Path, kfold_dir: Path, out: Optional[Path], hidden: int,
                    epochs: int, seed: int, oof_variant: Optional[str], overwrite: bool) -> None:
    """Fit a temporal-context head for RUN_DIR: a small GRU that reads the model's window
    outputs one after another, as a device streams them, and remembers what came before (a
    stand_to_sit a minute ago says the person is sitting now).

    It learns from out-of-fold outputs on whole recordings of the run's training subjects and
    picks its epoch on the validation subjects; the test subjects stay unseen. Ship it with
    `har-export convert RUN_DIR/model.keras --context RUN_DIR/context`. Example:

        har-train fit --preset acc3-int8-hapt12 --kfold 5 --out runs/h12-k5
        har-train fit --preset acc3-int8-hapt12 --out runs/h12
        har-train context runs/h12 --oof runs/h12-k5"""
    from har_train.context_head import train_context

    config = HeadConfig(hidden=hidden, epochs=epochs, seed=seed, oof_variant=oof_variant)
    result = train_context(run_dir, kfold_dir, out or run_dir / "context", config, overwrite)
    for name, score in result.scores.items():
        click.echo(f"validation streams, {name}: accuracy {score['accuracy']:.4f}, macro-F1 "
                   f"{score['macro_f1']:.4f} ({score['windows']} windows)")
    click.echo(f"head: {result.out_dir / 'context.keras'} (epoch {result.best_epoch})")
    click.echo(f"next: har-export convert {run_dir / 'model.keras'} --context {result.out_dir}")


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--split", "side", type=click.Choice(["test", "val", "train"]), default="test",
              show_default=True, help="Which subjects to score.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_command(run_dir: Path, side: str, as_json: bool) -> None:
    """Re-score a run's saved model on its own subjects (rebuilt from the recorded data)."""
    model_path = run_dir / "model.keras"
    if not model_path.is_file():
        raise BadModel(f"{run_dir} is not a run folder: model.keras is missing")
    import keras

    import har_train.qat  # noqa: F401  registers the QAT layer for loading
    from har_train.dataset import load_run
    from har_train.report import evaluate, format_table

    run = load_run(run_dir)
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except (ValueError, OSError, TypeError) as exc:
        raise BadModel(f"{model_path}: cannot load the model ({exc})") from None
    metrics = evaluate(model, getattr(run.data, side), run.spec.labels)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    click.echo(f"{run_dir} — {run.config.get('model')} on {side} subjects "
               f"{list(getattr(run.data.split, side))}")
    click.echo(format_table(metrics))


@cli.command("to-csv")
@click.argument("source")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--subject", "subjects", multiple=True, type=click.IntRange(min=0),
              help="Only this subject (repeatable). [default: all]")
def to_csv_command(source: str, out: Path, subjects) -> None:
    """Write SOURCE's recordings as CSV files into the folder OUT (one per recording).

    SOURCE names a data source as `fit --data` does (hapt, uci:DIR, csv:PATH,
    synthetic[:SEED]). The files follow the documented CSV schema (docs/DATA.md), so the
    TF-free runtime can replay them:

    \b
      har-train to-csv hapt runs/main/subject2 --subject 2
      har-runtime replay runs/main/bundle runs/main/subject2 --fast
    """
    from har_train.data.to_csv import write_source_csv

    paths = write_source_csv(source, out, subjects)
    click.echo(f"wrote {len(paths)} recording(s) to {out}")


@cli.command("models")
def models_command() -> None:
    """List the model architectures with their parameter counts."""
    from har_train.dataset import make_spec
    from har_train.models import param_table

    counts = {ch: param_table(make_spec(channels=ch)) for ch in sorted(CHANNEL_SETS)}
    width = max(len(name) for name in MODELS)
    header = "  ".join(f"{'params ' + ch:>16}" for ch in counts)
    click.echo(f"{'model':<{width}} {header}  description")
    for name, info in MODELS.items():
        cols = "  ".join(f"{counts[ch][name]:>16,}" for ch in counts)
        click.echo(f"{name:<{width}} {cols}  {info.description}")


@cli.command("presets")
def presets_command() -> None:
    """List the named presets and the options each one sets."""
    for preset in PRESETS.values():
        click.echo(f"{preset.name}: {preset.description}")
        click.echo("    " + ", ".join(f"{k}={v}" for k, v in preset.options))


def main() -> None:
    """Console entry point; defaults KERAS_BACKEND to tensorflow only when it is unset."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli(prog_name="har-train")
