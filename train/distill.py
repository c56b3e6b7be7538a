"""Knowledge distillation: soft targets from a teacher ensemble of saved har-train runs.

A small int8 model trained alone lands on a different sitting/standing boundary with every
seed; the mean softmax of several runs (the teacher) is steadier. Each training window's target
becomes `(1 - w) * one-hot label + w * teacher probabilities`, so the student learns the
ensemble's confidence as well as the label.

The teacher's probabilities are computed once on the training windows as stored (before the
batch augmentation, which is a few degrees of rotation and a few percent of gain and noise):
the targets stay deterministic and training does not run the teachers every batch.

Every teacher must share the student's preprocessing exactly and must not have trained on the
student's validation or test subjects: a teacher that saw them would leak those subjects into
the student's model selection or its score.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.spec import PreprocessSpec, SpecError
from har_train.config import TrainConfig
from har_train.dataset import SplitData
from har_train.errors import ConfigError
from har_train.run_model import load_run_model
from har_train.splits import SubjectSplit

#: Teacher outputs must be probabilities: non-negative rows summing to 1 within this.
PROB_SUM_TOL = 1e-3


def _teacher_files(run: Path):
    """(spec, data source, training subjects) of a teacher run folder, or ConfigError."""
    try:
        spec = PreprocessSpec.from_json((run / "spec.json").read_text())
        config = json.loads((run / "config.json").read_text())
        trained_on = SubjectSplit.from_dict(config["split"]).train
    except FileNotFoundError as exc:
        raise ConfigError(f"teacher {run} is not a har-train run folder: "
                          f"{Path(exc.filename).name} is missing") from None
    except OSError as exc:  # a file given instead of the folder, or unreadable
        raise ConfigError(f"teacher {run} is not a readable run folder "
                          f"({type(exc).__name__})") from None
    except (ValueError, KeyError, TypeError, SpecError) as exc:
        raise ConfigError(f"teacher {run}: unreadable spec.json/config.json ({exc})") from None
    return spec, config.get("data"), set(int(s) for s in trained_on)


def check_teacher(run_dir, spec: PreprocessSpec, split: SubjectSplit, data: str) -> Path:
    """The teacher run folder, after checking it fits the student's spec, data and split."""
    run = Path(run_dir)
    teacher_spec, teacher_data, trained_on = _teacher_files(run)
    if not (run / "model.keras").is_file():
        raise ConfigError(f"teacher {run} has no model.keras")
    if teacher_spec != spec:
        raise ConfigError(f"teacher {run} was trained with other preprocessing than the student "
                          "(task, channels, acc mode, window and rate must all match)")
    if teacher_data != data:
        raise ConfigError(f"teacher {run} was trained on data {teacher_data!r}, the student on "
                          f"{data!r}: its subject numbers would not mean the same people")
    leaked = sorted(trained_on & (set(split.val) | set(split.test)))
    if leaked:
        raise ConfigError(f"teacher {run} trained on subjects {leaked}, which are the student's "
                          "validation or test subjects; use a teacher with the same split "
                          "(for --kfold, a k-fold folder of the same k)")
    return run


def _probabilities(model, run: Path, x: np.ndarray) -> np.ndarray:
    probs = np.asarray(model.predict(x, batch_size=512, verbose=0), dtype=np.float64)
    sums = probs.sum(axis=1)
    if not (np.all(np.isfinite(probs)) and np.all(probs >= 0)
            and np.all(np.abs(sums - 1.0) <= PROB_SUM_TOL)):
        raise ConfigError(f"teacher {run}/model.keras does not output probabilities "
                          "(a softmax per window)")
    return probs


def teacher_probabilities(run_dirs: Sequence[str], spec: PreprocessSpec, split: SubjectSplit,
                          x: np.ndarray, data: str) -> np.ndarray:
    """Mean softmax of the teacher runs on windows `x`: float32 (n, num_classes), rows sum to 1."""
    runs = [check_teacher(r, spec, split, data) for r in run_dirs]
    total = np.zeros((len(x), spec.num_classes), dtype=np.float64)
    for run in runs:
        total += _probabilities(load_run_model(run, spec, "teacher"), run, x)
    mean = total / len(runs)
    return (mean / mean.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_targets(config: TrainConfig, spec: PreprocessSpec,
                 data: SplitData) -> Optional[Tuple[np.ndarray, float]]:
    """The WindowFeeder's `soft_targets` for a run: (teachers' probabilities on the training
    windows, distill_weight), or None without teachers."""
    if not config.teacher:
        return None
    probs = teacher_probabilities(config.teacher, spec, data.split, data.train.x, config.data)
    return probs, config.distill_weight


def fold_teachers(run_dirs: Sequence[str], k: int, fold: int) -> tuple:
    """The teachers for fold `fold` (1-based) of a k-fold run: each teacher must be a k-fold
    folder of the same k (its fold{fold} split matches the student's fold)."""
    teachers = []
    for run_dir in run_dirs:
        root = Path(run_dir)
        try:
            teacher_k = json.loads((root / "kfold.json").read_text())["k"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"with --kfold, teacher {root} must be a k-fold folder "
                              "(har-train fit --kfold, with kfold.json)") from None
        if teacher_k != k:
            raise ConfigError(f"teacher {root} is a {teacher_k}-fold folder; the student runs "
                              f"{k} folds")
        teachers.append(str(root / f"fold{fold}"))
    return tuple(teachers)
