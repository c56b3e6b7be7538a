"""Leave-subjects-out k-fold cross-validation over the non-test subjects (`har-train fit
--kfold K`): one run folder per fold, and kfold.json with the per-fold validation accuracy."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

from har_train.config import TrainConfig, choose_test_subjects
from har_train.dataset import subjects_of
from har_train.distill import check_teacher, fold_teachers
from har_train.errors import ConfigError
from har_train.errors import SplitError
from har_train.fit import TrainResult, train
from har_train.rundir import check_out_dir, prepare_out_dir
from har_train.splits import kfold_splits


@dataclass(frozen=True)
class KFoldResult:
    """Leave-subjects-out cross-validation over the non-test subjects."""

    out_dir: Path
    folds: Tuple[TrainResult, ...]

    @property
    def val_accuracies(self) -> List[float]:
        return [f.val_accuracy for f in self.folds]

    @property
    def mean(self) -> float:
        return float(np.mean(self.val_accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.val_accuracies))


def cross_validate(config: TrainConfig, k: int, out_dir, overwrite: bool = False) -> KFoldResult:
    """Leave-subjects-out k-fold over the non-test subjects: one run folder per fold.

    Reports validation accuracy per fold (the test subjects stay out of every choice);
    writes kfold.json with the per-fold figures, mean and standard deviation. Teachers
    (`config.teacher`) must be k-fold folders of the same k: fold i learns from their fold i.
    """
    from har_train.data.sources import load_source
    from har_train.fit import data_spec

    if config.val_subjects is not None:
        raise ConfigError("k-fold picks the validation subjects itself; drop val_subjects "
                          "(--val-subjects)")
    check_out_dir(out_dir, overwrite)
    teachers = [fold_teachers(config.teacher, k, i) for i in range(1, k + 1)]
    source = load_source(config.data, config.rate_hz, config.acc_unit, config.gyro_unit)
    subjects = subjects_of(source.recordings)
    try:
        splits = kfold_splits(subjects, k, seed=config.split_seed,
                              test=choose_test_subjects(config, subjects, source.test))
    except SplitError as exc:
        raise ConfigError(str(exc)) from None
    if config.teacher:  # every fold's teachers, before any folder is written
        spec = data_spec(config, source)[1]
        for split, teacher in zip(splits, teachers):
            for run in teacher:
                check_teacher(run, spec, split, config.data)
    out = prepare_out_dir(out_dir, overwrite)
    folds = []
    for i, (split, teacher) in enumerate(zip(splits, teachers), start=1):
        print(f"fold {i}/{k}: validation subjects {list(split.val)}")
        fold_config = config.replace(val_subjects=split.val, teacher=teacher)
        folds.append(train(fold_config, out / f"fold{i}", recordings=source))
    result = KFoldResult(out, tuple(folds))
    summary = {"k": k, "val_accuracy": result.val_accuracies, "mean": result.mean,
               "std": result.std, "folds": [f"fold{i}" for i in range(1, k + 1)],
               "config": config.to_dict()}
    (out / "kfold.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result
