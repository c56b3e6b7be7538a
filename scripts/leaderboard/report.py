"""docs/RESULTS.md from row summaries: the table, per-class detail, timing, choices, commands.

How each choice was made is hand-written prose in docs/RESULTS_CHOICES.md; the report copies
the part of it below `CHOICES_MARKER`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from scripts import REPO
from scripts.leaderboard.rows import MAX_INT8_DROP, MIN_INT8_AGREEMENT, TUTORIAL_SEED_ACCURACY
from scripts.leaderboard.stats import RowSummary, verdict

CHOICES_FILE = REPO / "docs" / "RESULTS_CHOICES.md"
#: The line of CHOICES_FILE after which its text belongs in the report.
CHOICES_MARKER = "<!-- docs/RESULTS.md copies everything below this line -->"


def read_choices(path: Path = CHOICES_FILE) -> str:
    """The text of `path` below CHOICES_MARKER (ValueError if unreadable or unmarked)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    _, marker, body = text.partition(CHOICES_MARKER)
    if not marker or not body.strip():
        raise ValueError(f"{path} has no text below the line {CHOICES_MARKER!r}")
    return body.strip()


def main_table(summaries: Sequence[RowSummary]) -> List[str]:
    """The headline table: int8 figures through the runtime interpreter, mean ± std."""
    lines = ["| row | task | channels | preset (model, params) | seeds | int8 test score "
             "(mean ± std) | target | target met | float32 TFLite | Keras | int8 KB | "
             "int8/float32 agreement (min) | accuracy drop (max, pt) | int8 parity met | "
             "val acc |",
             "|" + "---|" * 15]
    for s in summaries:
        metric = "acc %" if s.row.metric == "accuracy" else "macro-F1"
        fmt = (lambda st: st.pct()) if s.row.metric == "accuracy" else (lambda st: st.frac())
        lines.append(
            f"| {s.row.key} | {s.row.task} | {s.row.channels} | {s.row.preset} ({s.model}, "
            f"{s.params:,}) | {len(s.seeds)} | {metric} {fmt(s.headline)} | "
            f"{s.row.target_text()} | {verdict(s.target_met)} | {fmt(s.float32[s.row.metric])} "
            f"| {fmt(s.keras[s.row.metric])} | {s.int8_kb_max:.1f} | "
            f"{100 * s.agreement_min:.2f} % | {100 * s.drop_max:+.2f} | "
            f"{verdict(s.parity_met)} | {s.val_accuracy.pct()} |")
    return lines


def reference_lines(summaries: Sequence[RowSummary]) -> List[str]:
    """Reference points beside the table (the tutorial baseline and earlier measurements)."""
    lines = [f"* KCC2020 tutorial, seed_cnn on the body accelerometer: "
             f"{100 * TUTORIAL_SEED_ACCURACY:.2f} % test accuracy."]
    for s in summaries:
        if s.row.key == "seed-body":
            lines.append(f"* Reproduced here (row seed-body, int8 through the runtime): "
                         f"{s.int8['accuracy'].pct()} % over {len(s.seeds)} seed(s); "
                         f"Keras {s.keras['accuracy'].pct()} %.")
        elif s.row.reference:
            lines.append(f"* {s.row.key}: earlier reference {s.row.reference}.")
    return lines


def class_detail(s: RowSummary, labels: Sequence[str]) -> List[str]:
    """Per-class int8 F1 (mean over seeds) and the int8 confusion matrix summed over seeds."""
    lines = [f"### {s.row.key}", "",
             f"Seeds {', '.join(map(str, s.seeds))}; int8 macro-F1 {s.int8['macro_f1'].frac()}, "
             f"accuracy {s.int8['accuracy'].pct()} %.", "",
             "| class | int8 F1 (mean over seeds) |", "|---|---|"]
    lines += [f"| {name} | {f1:.3f} |" for name, f1 in zip(labels, s.per_class_f1)]
    short = [name[:10] for name in labels]
    lines += ["", "Confusion matrix (int8, test windows summed over seeds; rows true, columns "
              "predicted):", "", "| true \\ pred | " + " | ".join(short) + " |",
              "|" + "---|" * (len(labels) + 1)]
    for name, counts in zip(short, s.confusion):
        lines.append(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")
    return lines + [""]


def seed_table(records_by_row: Mapping[str, Sequence[Mapping[str, Any]]]) -> List[str]:
    """Every (row, seed): the raw figures the summary was built from."""
    lines = ["| row | seed | val acc | Keras acc | float32 acc | int8 acc | int8 macro-F1 | "
             "agreement | drop (pt) | int8 bytes | interpreter | train s | export s | score s |",
             "|" + "---|" * 14]
    for key, records in records_by_row.items():
        for r in records:
            i8, f32 = r["variants"]["int8"], r["variants"]["float32"]
            lines.append(
                f"| {key} | {r['seed']} | {r['val']['accuracy']:.4f} | "
                f"{r['keras_test']['accuracy']:.4f} | {f32['accuracy']:.4f} | "
                f"{i8['accuracy']:.4f} | {i8['macro_f1']:.4f} | "
                f"{100 * r['parity']['agreement']:.2f} % | {100 * r['parity']['drop']:+.2f} | "
                f"{i8['size_bytes']:,} | {i8['interpreter']} {i8['interpreter_version']} | "
                f"{r['seconds']['train']:.0f} | {r['seconds']['export']:.0f} | "
                f"{r['seconds']['score']:.0f} |")
    return lines


def timing_lines(summaries: Sequence[RowSummary], full_seeds: int,
                 wall_seconds: Optional[float]) -> List[str]:
    """Measured seconds per seed, and what a full run (every row, `full_seeds` seeds) costs."""
    lines = ["| row | train s / seed | export s / seed | score s / seed |", "|---|---|---|---|"]
    per_seed = 0.0
    for s in summaries:
        t = {k: s.seconds[k].mean for k in ("train", "export", "score")}
        per_seed += sum(t.values())
        lines.append(f"| {s.row.key} | {t['train']:.0f} | {t['export']:.0f} | {t['score']:.0f} |")
    lines += ["", f"One seed of these {len(summaries)} rows takes {per_seed / 60:.1f} min; "
              f"{full_seeds} seeds of each take about {per_seed * full_seeds / 60:.0f} min on "
              "this machine at these speeds."]
    if wall_seconds is not None:
        lines.append(f"This invocation's wall time: {wall_seconds / 60:.1f} min.")
    return lines


def render(summaries: Sequence[RowSummary], records_by_row, labels_by_row: Mapping[str, list],
           context: Mapping[str, Any]) -> str:
    """The whole of docs/RESULTS.md."""
    short = [s.row.key for s in summaries if len(s.seeds) < context["full_seeds"]]
    out = ["# Results: accelerometer HAR at the microcontroller frontier", "",
           f"Generated by `{context['command']}` on {context['date']} — do not edit by hand; "
           "rerun the script.", "",
           f"Data: `{context['data']}`; test subjects {context['test_subjects']} (UCI HAR); every "
           "score is the **exported TFLite model run by the runtime interpreter** "
           f"({context['interpreter']}) on the test windows. Targets: see the issue; int8 parity "
           f"target on every row: agreement >= {100 * MIN_INT8_AGREEMENT:.1f} % with float32 and "
           f"accuracy drop <= {100 * MAX_INT8_DROP:.1f} pt, held by the worst seed.", ""]
    out += main_table(summaries) + [""]
    if short:
        out += [f"Rows with fewer than {context['full_seeds']} seeds: {', '.join(short)}. "
                f"{context.get('note') or ''}", ""]
    out += ["## Reference points", ""] + reference_lines(summaries) + [""]
    out += ["## How each choice was made", "", context["choices"], ""]
    out += ["## Per-class F1 and confusion matrices (int8)", ""]
    for s in summaries:
        out += class_detail(s, labels_by_row[s.row.key])
    out += ["## Every seed", ""] + seed_table(records_by_row) + [""]
    out += ["## Timing", ""] + timing_lines(summaries, context["full_seeds"],
                                            context.get("wall_seconds")) + [""]
    out += ["## Versions and reproduction", "", "```"]
    out += [f"{k}: {v}" for k, v in sorted(context["versions"].items())]
    out += ["```", "", "```"] + list(context["commands"]) + ["```", ""]
    return "\n".join(out)

