"""Leaderboard figures: one seed's record from predictions, and a row's summary over seeds.

numpy only (plus har_train.report's metrics), so the tests exercise it without TensorFlow.
A record is a plain JSON-able dict, saved per (row, seed) so that runs resume and a report can
be rebuilt from the records of several invocations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_train.report import metrics_from_predictions
from scripts.leaderboard.rows import MAX_INT8_DROP, MIN_INT8_AGREEMENT, Row

VARIANTS = ("int8", "float32")


def variant_figures(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> Dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and confusion matrix of one variant's predictions."""
    m = metrics_from_predictions(np.asarray(y), np.asarray(pred), labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "per_class_f1": [m["per_class"][name]["f1"] for name in labels],
            "confusion": m["confusion_matrix"]}


def int8_parity(y: np.ndarray, int8_pred: np.ndarray, float_pred: np.ndarray) -> Dict[str, float]:
    """Top-1 agreement of int8 with float32 and the accuracy it loses (fractions)."""
    y, a, b = (np.asarray(v) for v in (y, int8_pred, float_pred))
    if not (len(y) == len(a) == len(b)) or len(y) == 0:
        raise ValueError("int8, float32 and label arrays must be non-empty and the same length")
    return {"agreement": float(np.mean(a == b)),
            "drop": float(np.mean(b == y) - np.mean(a == y))}


def make_record(row: Row, seed: int, labels: Sequence[str], y: np.ndarray,
                scores: Mapping[str, Mapping[str, Any]], extra: Mapping[str, Any]) -> Dict:
    """One (row, seed) result from the runtime's predictions (`scores`, as
    scripts.leaderboard.score writes them)."""
    record: Dict[str, Any] = {"row": row.key, "seed": int(seed), "labels": list(labels),
                              "n_test": int(len(y)), "variants": {}}
    for name in VARIANTS:
        s = scores[name]
        figures = variant_figures(y, np.asarray(s["pred"]), labels)
        figures.update({k: s[k] for k in ("interpreter", "interpreter_version", "size_bytes",
                                           "deployable")})
        record["variants"][name] = figures
    record["parity"] = int8_parity(y, scores["int8"]["pred"], scores["float32"]["pred"])
    record.update(extra)
    return record


@dataclass(frozen=True)
class Stat:
    """Mean and (population) standard deviation over seeds; std is 0 for one seed."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        arr = np.asarray(list(values), dtype=np.float64)
        if arr.size == 0:
            raise ValueError("no values to summarise")
        return cls(float(arr.mean()), float(arr.std()), int(arr.size))

    def pct(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}"

    def frac(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


@dataclass(frozen=True)
class RowSummary:
    """A row's figures over its seeds and which targets they meet."""

    row: Row
    seeds: Tuple[int, ...]
    int8: Mapping[str, Stat]
    float32: Mapping[str, Stat]
    keras: Mapping[str, Stat]
    val_accuracy: Stat
    int8_kb_max: float
    agreement_min: float
    drop_max: float
    per_class_f1: Tuple[float, ...]
    confusion: Tuple[Tuple[int, ...], ...]
    seconds: Mapping[str, Stat]
    params: int
    model: str

    @property
    def headline(self) -> Stat:
        return self.int8[self.row.metric]

    @property
    def target_met(self) -> Optional[bool]:
        """Mean int8 score (and largest int8 file) against the row's targets; None: no target."""
        if self.row.target is None:
            return None
        size_ok = self.row.max_int8_kb is None or self.int8_kb_max <= self.row.max_int8_kb
        return self.headline.mean >= self.row.target and size_ok

    @property
    def parity_met(self) -> bool:
        """The int8-vs-float32 target, held by the worst seed."""
        return self.agreement_min >= MIN_INT8_AGREEMENT and self.drop_max <= MAX_INT8_DROP


def _stats(records: Sequence[Mapping], getter) -> Stat:
    return Stat.of([getter(r) for r in records])


def summarise(row: Row, records: Sequence[Mapping]) -> RowSummary:
    """Aggregate one row's per-seed records (confusion matrices summed over seeds)."""
    if not records:
        raise ValueError(f"row {row.key} has no records")
    records = sorted(records, key=lambda r: r["seed"])
    figures = {v: {m: _stats(records, lambda r, v=v, m=m: r["variants"][v][m])
                   for m in ("accuracy", "macro_f1")} for v in VARIANTS}
    keras = {m: _stats(records, lambda r, m=m: r["keras_test"][m])
             for m in ("accuracy", "macro_f1")}
    f1 = np.mean([r["variants"]["int8"]["per_class_f1"] for r in records], axis=0)
    cm = np.sum([r["variants"]["int8"]["confusion"] for r in records], axis=0)
    seconds = {k: _stats(records, lambda r, k=k: r["seconds"][k])
               for k in ("train", "export", "score")}
    return RowSummary(
        row=row, seeds=tuple(int(r["seed"]) for r in records), int8=figures["int8"],
        float32=figures["float32"], keras=keras,
        val_accuracy=_stats(records, lambda r: r["val"]["accuracy"]),
        int8_kb_max=max(r["variants"]["int8"]["size_bytes"] for r in records) / 1024,
        agreement_min=min(r["parity"]["agreement"] for r in records),
        drop_max=max(r["parity"]["drop"] for r in records),
        per_class_f1=tuple(float(v) for v in f1),
        confusion=tuple(tuple(int(c) for c in line) for line in cm),
        seconds=seconds, params=int(records[0]["params"]), model=str(records[0]["model"]))


def verdict(flag: Optional[bool]) -> str:
    return "—" if flag is None else ("met" if flag else "**missed**")


def group_records(records: Sequence[Mapping]) -> Dict[str, List[Mapping]]:
    """Records by row key, one per seed (a later duplicate of a (row, seed) replaces an earlier)."""
    by_key: Dict[Tuple[str, int], Mapping] = {}
    for r in records:
        by_key[(r["row"], int(r["seed"]))] = r
    out: Dict[str, List[Mapping]] = {}
    for (row, _), r in sorted(by_key.items()):
        out.setdefault(row, []).append(r)
    return out
