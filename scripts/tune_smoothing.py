"""Choose smoothing defaults on VALIDATION subjects: smoothed window accuracy per setting.

    python -m scripts.tune_smoothing runs/main/bundle --subjects 17,21,26

Streams each HAPT recording of the given subjects through the bundle once (window
probabilities), then replays those probabilities through every smoothing setting of a small
grid. "unknown" counts as wrong, so a setting cannot win by abstaining. Prints a table, best first.
"""
from __future__ import annotations

import itertools

import click

from har_runtime.bundle import load_bundle
from har_runtime.contract.smoothing import Smoother, SmoothingSettings
from har_runtime.stream import offline_windows
from har_train.data.hapt import load_hapt


def window_probs(bundle, recordings):
    """(probabilities, true class or -1) per window, per recording."""
    classifier = bundle.open()
    out = []
    for rec in recordings:
        off = offline_windows(bundle.spec, rec.times, rec.spec_frames(bundle.spec), rec.labels)
        out.append((classifier.predict_proba(off.windows), off.labels))
    return out


def smoothed_accuracy(streams, labels, settings) -> float:
    correct = total = 0
    for probs, truth in streams:
        smoother = Smoother(labels, settings)
        for p, y in zip(probs, truth):
            label = smoother.update(p)
            if y >= 0:
                total += 1
                correct += label == labels[y]
    return correct / max(total, 1)


@click.command()
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--subjects", default="17,21,26", show_default=True,
              help="Comma-separated HAPT subjects (use validation subjects, never test ones).")
def main(bundle_dir: str, subjects: str) -> None:
    """Print smoothed accuracy for a grid of smoothing settings."""
    bundle = load_bundle(bundle_dir)
    wanted = {int(s) for s in subjects.split(",")}
    test = set(bundle.training.get("split", {}).get("test", []))
    if wanted & test:
        raise click.UsageError(f"subjects {sorted(wanted & test)} are test subjects")
    streams = window_probs(bundle, [r for r in load_hapt() if r.subject in wanted])
    raw = smoothed_accuracy(streams, bundle.labels, SmoothingSettings("vote", 1, 0.0, 1))
    rows = []
    for method, k, conf, hyst in itertools.product(("prob_average", "vote"), (1, 2, 3, 5),
                                                   (0.0, 0.4, 0.5), (1, 2)):
        settings = SmoothingSettings(method, k, conf, hyst)
        rows.append((smoothed_accuracy(streams, bundle.labels, settings), settings))
    rows.sort(key=lambda r: (-r[0], r[1].method, r[1].k))
    click.echo(f"subjects {sorted(wanted)}; unsmoothed window accuracy {raw:.4f}")
    for acc, s in rows:
        click.echo(f"{acc:.4f}  method={s.method} k={s.k} min_confidence={s.min_confidence} "
                   f"hysteresis={s.hysteresis}")


if __name__ == "__main__":
    main()
