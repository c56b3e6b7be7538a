"""The leaderboard's rows: what is trained, what it must reach, and the points it is compared with.

One place for every target of the "accuracy at the frontier" issue, so the script, the tests
and docs/RESULTS.md cannot disagree about them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

#: int8 vs float32 (both TFLite, both through the runtime interpreter) on every row.
MIN_INT8_AGREEMENT = 0.995
MAX_INT8_DROP = 0.003
#: The KCC2020 tutorial's seed_cnn on the body accelerometer, test accuracy.
TUTORIAL_SEED_ACCURACY = 0.8442
#: Member j of an ensemble row's seed s trains with seed s + j * MEMBER_SEED_STRIDE.
MEMBER_SEED_STRIDE = 100
#: Data source and seeds of a full run.
DEFAULT_DATA = "hapt"
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class Row:
    """One leaderboard row: task x channels x preset, with its target.

    `metric` is "accuracy" or "macro_f1" of the exported int8 model on the test subjects;
    `max_int8_kb` adds a flash-size target; `overrides` are TrainConfig values on top of the
    preset (e.g. the seed baseline's body accelerometer). `members` > 1 makes each seed's model
    the mean of that many runs of the preset (`har-train ensemble`), seeds s, s + stride, ...
    """

    key: str
    task: str
    channels: str
    preset: str
    metric: str
    target: Optional[float]
    max_int8_kb: Optional[float] = None
    overrides: Tuple[Tuple[str, object], ...] = ()
    reference: str = ""
    members: int = 1

    def member_seeds(self, seed: int) -> Tuple[int, ...]:
        """Training seeds of the runs behind this row's model for leaderboard seed `seed`."""
        return tuple(seed + j * MEMBER_SEED_STRIDE for j in range(self.members))

    def train_options(self) -> Dict[str, object]:
        """TrainConfig overrides for this row (task and channels always; then `overrides`)."""
        options: Dict[str, object] = {"task": self.task, "channels": self.channels}
        options.update(dict(self.overrides))
        return options

    def target_text(self) -> str:
        if self.target is None:
            return f"reference: tutorial {100 * TUTORIAL_SEED_ACCURACY:.2f} %"
        text = (f">= {100 * self.target:.1f} %" if self.metric == "accuracy"
                else f"macro-F1 >= {self.target:.2f}")
        if self.max_int8_kb is not None:
            text += f", int8 <= {self.max_int8_kb:g} KB"
        return text


ROWS: Mapping[str, Row] = {row.key: row for row in (
    Row("seed-body", "har6", "acc", "seed", "accuracy", None,
        overrides=(("acc_mode", "body"),),
        reference="KCC2020 tutorial seed_cnn, body accelerometer: 84.42 %"),
    Row("har6-acc", "har6", "acc", "acc3-int8", "accuracy", 0.95, max_int8_kb=32.0,
        reference="seed_cnn total acc 0.896, resnet1d (acc3-fast) 0.916 (seed 0, TRAINING.md)"),
    Row("har6-acc_gyro", "har6", "acc_gyro", "acc6-int8", "accuracy", 0.96, members=3),
    Row("hapt12-acc", "hapt12", "acc", "acc3-int8-hapt12", "macro_f1", 0.90, members=3),
    Row("hapt12-acc_gyro", "hapt12", "acc_gyro", "acc6-int8-hapt12", "macro_f1", 0.90,
        members=3),
)}


def parse_rows(text: Optional[str]) -> Tuple[Row, ...]:
    """Rows named in a comma-separated list (None or "all": every row, in table order)."""
    if text is None or text.strip() == "all":
        return tuple(ROWS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown or not names:
        raise ValueError(f"unknown row(s) {unknown or [text]}; choose from {list(ROWS)} or all")
    return tuple(ROWS[n] for n in ROWS if n in names)
