"""Replay every held-out HAPT subject through a bundle's live stream path; compare with offline.

    python -m scripts.replay_eval runs/main/bundle [BUNDLE ...] [--out docs/REPLAY.md]
        [--variant int8] [--side val] [--smoothing k=1 --smoothing min_confidence=0]

For each variant: window accuracy and macro-F1 of what the streaming runtime emits (samples
pushed in 0.1 s chunks, as `har-runtime replay` does) over the run's test subjects, scored on
every labelled window it emits (transitions included for hapt12), the same for the smoothed
activity the device reports, and the offline accuracy the parity gate measured on the same
subjects' windows. Stream and batch windows are bit-identical, so the first and the offline
accuracy should agree exactly. "activity acc" is the accuracy on the windows labelled with
one of the six activities (transitions left out; for a 6-class bundle it is the window accuracy),
so a 12-class bundle answers the 6-class question too, with its transitions counted as errors.
Bundles that differ only in their seed are also summarised as mean ± std. `--side val`
replays the run's validation subjects instead (for choices; the test subjects are for
reporting); `--smoothing KEY=VALUE` overrides the bundles' smoothing settings.
"""
from __future__ import annotations

import dataclasses
import platform
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import click
import numpy as np

from har_runtime.bundle import load_bundle
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.recurrent_context import RecurrentContext
from har_runtime.replay import replay_recording
from har_train.data.hapt import load_hapt


@dataclass(frozen=True)
class StreamScore:
    """Scores of one variant over the replayed recordings (fractions; F1 macro over classes)."""

    variant: str
    accuracy: float
    macro_f1: float
    smoothed_accuracy: float
    smoothed_macro_f1: float
    activity_accuracy: float
    windows: int
    seconds: float


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean F1 over the classes labelled or predicted; a prediction of -1 ("unknown", the
    smoother abstaining) is a miss, not a class."""
    classes = np.union1d(y_true, y_pred[y_pred >= 0])
    scores = [2.0 * np.sum((y_pred == c) & (y_true == c))
              / max(1, np.sum(y_pred == c) + np.sum(y_true == c)) for c in classes]
    return float(np.mean(scores)) if scores else 0.0


def evaluate_variant(bundle, variant, recordings, smoothing=None) -> StreamScore:
    """Replay `recordings` through `variant`'s stream path; score what it emitted
    (`smoothing`: settings instead of the bundle's)."""
    # A variant that failed the parity gate is scored too when asked for by name (the table
    # says so): the score of an undeployable int8 file is still a fact worth recording.
    classifier = bundle.open(variant, allow_undeployable=True)
    index = {name: i for i, name in enumerate(bundle.labels)}
    truth: List[np.ndarray] = []
    raw: List[int] = []
    smooth: List[int] = []
    start = time.perf_counter()
    for rec in recordings:
        result = replay_recording(rec, bundle.spec, classifier, smoothing or bundle.smoothing,
                                  speed=None)
        if not result.scored:
            continue
        keep = result.truth >= 0
        truth.append(result.truth[keep])
        kept = [p for p, k in zip(result.predictions, keep) if k]
        raw += [index[p.label] for p in kept]
        smooth += [index.get(p.smoothed_label, -1) for p in kept]  # "unknown" is a miss
    y = np.concatenate(truth)
    r, s = np.asarray(raw), np.asarray(smooth)
    activity = np.isin(y, [i for i, name in enumerate(bundle.labels) if "_to_" not in name])
    return StreamScore(variant, float(np.mean(r == y)), macro_f1(y, r), float(np.mean(s == y)),
                       macro_f1(y, s), float(np.mean(r[activity] == y[activity])), len(y),
                       time.perf_counter() - start)


def _context_name(bundle) -> List[str]:
    if bundle.context is None:
        return []
    return ["learned context" if isinstance(bundle.context, RecurrentContext)
            else "posture context"]


def describe(bundle, seed: bool = True) -> str:
    """What a bundle is, in a table cell: preset, seed, QAT, context, tier."""
    config = bundle.training.get("config") or {}
    extras = ([f"s{config.get('seed')}"] if seed else []) + \
        (["qat"] if config.get("qat") else []) + _context_name(bundle)
    return f"{config.get('preset') or config.get('model')} ({', '.join(extras) or 'plain'}; " \
        f"tier {bundle.tier or 'none'})"


SUMMARY_FIELDS = ("accuracy", "macro_f1", "activity_accuracy", "smoothed_accuracy",
                  "smoothed_macro_f1")


def summary_lines(rows) -> List[str]:
    """Mean ± std over bundles that differ only in their seed, one line per kind."""
    groups: Dict[Tuple[str, str, int], List[StreamScore]] = defaultdict(list)
    for bundle, score in rows:
        groups[(describe(bundle, seed=False), score.variant, len(bundle.labels))].append(score)
    lines = ["", "Over seeds (mean ± std):", "",
             "| bundle | labels | variant | seeds | stream window acc | stream macro-F1 | "
             "activity acc | smoothed acc | smoothed macro-F1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (name, variant, k), scores in groups.items():
        cells = [f"{np.mean([getattr(s, f) for s in scores]):.4f} ± "
                 f"{np.std([getattr(s, f) for s in scores]):.4f}" for f in SUMMARY_FIELDS]
        lines.append(f"| {name} | {k} classes | {variant} | {len(scores)} | {' | '.join(cells)} |")
    return lines


def _lines(bundle_dirs: Sequence[str], rows, interpreter: str, side: str,
           overrides: Sequence[str]) -> List[str]:
    lines = [
        "# Replay of held-out subjects through the runtime",
        "",
        f"Generated by `python -m scripts.replay_eval {' '.join(bundle_dirs)}"
        f"{' --side ' + side if side != 'test' else ''}"
        f"{''.join(' --smoothing ' + o for o in overrides)}` on "
        f"{time.strftime('%Y-%m-%d')} ({platform.python_version()}, numpy {np.__version__}, "
        f"interpreter `{interpreter}`).",
        "",
        f"Each bundle's HAPT {side} subjects: every recording streamed in 0.1 s chunks through "
        "`StreamClassifier` (resampler, windower, interpreter, context if the bundle has one, "
        "smoother) as fast as possible; every labelled window the stream emits is scored "
        "(transitions included for hapt12). Smoothed: the bundle's smoothing on top.",
        "",
        "| bundle | labels | variant | stream window acc | stream macro-F1 | activity acc | "
        "smoothed acc | smoothed macro-F1 | offline acc (parity gate) | agreement with Keras "
        "% (parity gate) | accuracy drop (pt) | windows | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for bundle, s in rows:
        parity = bundle.variants[s.variant].parity
        off, agree, drop = (f"{parity[key] * scale:{fmt}}" if isinstance(parity.get(key), float)
                            and side == "test" else "n/a" for key, scale, fmt in (
                                ("accuracy", 1, ".4f"), ("agreement", 100, ".2f"),
                                ("accuracy_drop", 100, "+.2f")))
        flag = "" if bundle.variants[s.variant].deployable else " (not deployable)"
        lines.append(f"| {describe(bundle)} | {len(bundle.labels)} classes | {s.variant}{flag} | "
                     f"{s.accuracy:.4f} | {s.macro_f1:.4f} | {s.activity_accuracy:.4f} | "
                     f"{s.smoothed_accuracy:.4f} | "
                     f"{s.smoothed_macro_f1:.4f} | {off} | {agree} | {drop} | {s.windows} | "
                     f"{s.seconds:.1f} |")
    return lines + summary_lines(rows) + [
        "", "Stream and offline windows are bit-identical (tests/runtime/"
        "test_stream_equals_batch.py), so without a context the stream and offline "
        "columns agree; a context changes what the stream emits, the offline column "
        "is the model alone (and the parity columns compare the model with its Keras "
        "original; a learned head has its own gate, bundle.json context.parity)."]


def _smoothing(base: SmoothingSettings, overrides: Sequence[str]) -> SmoothingSettings:
    """`base` with KEY=VALUE overrides (numbers as numbers); a usage error if malformed."""
    values = base.to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in values:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE with KEY in {sorted(values)}")
        values[key] = type(values[key])(text) if key != "method" else text
    try:
        return dataclasses.replace(base, **values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("bundle_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default="docs/REPLAY.md", show_default=True)
@click.option("--variant", "variants", multiple=True,
              help="Variant to replay (repeatable). [default: every variant]")
@click.option("--side", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="Replay the run's test subjects or its validation subjects (for choices).")
@click.option("--smoothing", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a smoothing setting of every bundle (k, min_confidence, "
                   "hysteresis, method).")
def main(bundle_dirs, out: str, variants, side: str, overrides) -> None:
    """Write the stream-vs-offline replay table for each BUNDLE_DIR's test subjects."""
    recordings = load_hapt()
    rows, interpreter = [], ""
    for bundle_dir in bundle_dirs:
        bundle = load_bundle(bundle_dir)
        smoothing = _smoothing(bundle.smoothing, overrides)
        wanted = set(bundle.training.get("split", {}).get(side, []))
        mine = [r for r in recordings if r.subject in wanted]
        for name in variants or list(bundle.variants):
            score = evaluate_variant(bundle, name, mine, smoothing)
            rows.append((bundle, score))
            interpreter = bundle.open(name, allow_undeployable=True).interpreter_name
            click.echo(f"{bundle_dir} {name}: stream {score.accuracy:.4f} (F1 "
                       f"{score.macro_f1:.4f}) smoothed {score.smoothed_accuracy:.4f} (F1 "
                       f"{score.smoothed_macro_f1:.4f}), {score.windows} windows")
    Path(out).write_text("\n".join(_lines(bundle_dirs, rows, interpreter, side, overrides))
                         + "\n")
    click.echo(f"written {out}")


if __name__ == "__main__":
    main()
