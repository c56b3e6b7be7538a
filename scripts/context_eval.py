"""Streaming scores of a preset with and without the learned temporal context, over seeds.

    python -m scripts.context_eval --preset acc3-int8-hapt12 [--preset ...] [--plain acc3-int8]
        [--seeds 5] [--work runs/context] [--out docs/RESULTS_STREAM.md]
        [--oof-variant int8|keras]

Runs the whole recipe with the project's own commands, skipping any step whose output is
already there (so an interrupted run resumes). For each `--preset`: one k-fold run (seed 0; its
out-of-fold outputs train every seed's head) with a bundle per fold (`har-export convert`),
then per seed S a run (`har-train fit --seed S`), its head (`har-train context --seed S
--oof-variant int8`: the head learns from the fold bundles' int8 outputs, the choice made on
validation in docs/RESULTS.md; `--oof-variant keras` learns from the fold models instead), a
plain bundle and a context bundle (`har-export convert --variants float32,int8 [--context]`). A
`--plain` preset gets the runs and plain bundles only (the comparison without a head). Last,
`scripts.replay_eval` streams each bundle's test subjects through the runtime (`--variant`,
default int8; a variant that failed its parity gate is scored too and marked) and writes the
table, with means over seeds, to `--out`.

Layout: WORK/PRESET/kfold (.../kfold/foldN/bundle), WORK/PRESET/sS (run), .../sS/context
(.../sS/context-keras with `--oof-variant keras`), .../sS/bundle, .../sS/bundle-ctx
(.../sS/bundle-ctx-keras).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import click

from har_runtime.exit_codes import ExitCode

BIN = Path(sys.executable).parent
#: har-export convert's exit codes after which the bundle exists (a variant that failed its
#: gate is written with deployable=false).
EXPORT_OK = (0, int(ExitCode.PARITY_FAILED))


def _run(args: Sequence[str], done: Path, ok: Sequence[int] = (0,)) -> None:
    """Run a command unless `done` exists (the step's last output); exit codes outside `ok`
    stop the script."""
    if done.exists():
        click.echo(f"have {done}", err=True)
        return
    click.echo("$ " + " ".join(str(a) for a in args), err=True)
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    code = subprocess.run([str(a) for a in args], env=env, stdout=subprocess.DEVNULL).returncode
    if code not in ok:
        raise click.ClickException(f"{args[0]} exited {code}")


#: What `--oof-variant keras` passes on: the fold models themselves, not a variant of theirs.
KERAS = "keras"
CONVERT = [BIN / "har-export", "convert", "--variants", "float32,int8", "--overwrite"]


def seed_bundles(preset: str, seed: int, root: Path, oof_variant: Optional[str]) -> List[Path]:
    """Train, fit the head (unless `oof_variant` is None: no head) and export for one seed;
    the bundle folders made."""
    run = root / f"s{seed}"
    _run([BIN / "har-train", "fit", "--preset", preset, "--seed", seed, "--out", run,
          "--overwrite"], run / "metrics.json")
    # A variant failing its parity gate is still written (deployable=false) and scored, marked.
    _run([*CONVERT, run / "model.keras", "--out", run / "bundle"], run / "bundle" / "bundle.json",
         EXPORT_OK)
    if oof_variant is None:
        return [run / "bundle"]
    keras = oof_variant == KERAS
    suffix, source = ("-keras", []) if keras else ("", ["--oof-variant", oof_variant])
    head, bundle = run / f"context{suffix}", run / f"bundle-ctx{suffix}"
    _run([BIN / "har-train", "context", run, "--oof", root / "kfold", "--seed", seed, *source,
          "--out", head, "--overwrite"], head / "context.json")
    _run([*CONVERT, run / "model.keras", "--out", bundle, "--context", head],
         bundle / "bundle.json", EXPORT_OK)
    return [bundle, run / "bundle"]


def kfold_bundles(preset: str, root: Path, export: bool) -> None:
    """The k-fold run (seed 0) whose out-of-fold outputs train the heads, and (`export`) a
    bundle per fold for `har-train context --oof-variant`."""
    kfold = root / "kfold"
    _run([BIN / "har-train", "fit", "--preset", preset, "--kfold", 5, "--seed", 0,
          "--out", kfold, "--overwrite"], kfold / "kfold.json")
    for fold in sorted(kfold.glob("fold*")) if export else []:
        _run([*CONVERT, fold / "model.keras", "--out", fold / "bundle"],
             fold / "bundle" / "bundle.json", EXPORT_OK)


@click.command()
@click.option("--preset", "presets", multiple=True,
              help="har-train preset to run with the learned head (repeatable).")
@click.option("--plain", "plain", multiple=True,
              help="har-train preset to run without a head (repeatable).")
@click.option("--seeds", type=click.IntRange(1), default=5, show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/context"), show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="docs/RESULTS_STREAM.md",
              show_default=True)
@click.option("--variant", "variants", multiple=True, default=("int8",), show_default=True,
              help="Variant to stream-score (repeatable).")
@click.option("--oof-variant", default="int8", show_default=True,
              help="The fold bundles' variant the heads learn from, or 'keras' for the fold "
                   "models themselves.")
def main(presets, plain, seeds: int, work: Path, out: str, variants, oof_variant: str) -> None:
    """Train, fit heads, export and stream-score each preset over SEEDS seeds."""
    if not presets and not plain:
        raise click.UsageError("name at least one --preset or --plain preset")
    bundles: List[Path] = []
    for preset, context in [(p, True) for p in presets] + [(p, False) for p in plain]:
        root = work / preset
        if context:
            kfold_bundles(preset, root, export=oof_variant != KERAS)
        bundles += [b for s in range(seeds)
                    for b in seed_bundles(preset, s, root, oof_variant if context else None)]
    picks = [arg for name in variants for arg in ("--variant", name)]
    subprocess.run([sys.executable, "-m", "scripts.replay_eval", *map(str, bundles), *picks,
                    "--out", out], check=True)


if __name__ == "__main__":
    main()
