"""The training recipe that adapts to the data: batch size and BatchNorm momentum chosen from the
number of training windows, and the check that tells when inference-mode outputs went wrong.

Why: BatchNorm layers normalise with each batch's statistics while training and with moving
averages at inference. With few steps per epoch (a small dataset at batch size 64 gets about
three), those averages never catch up with the weights: training accuracy reaches 100 % while
every inference-mode output, validation and test included, is at chance. Smaller batches give
more steps per epoch, and a lower momentum lets the averages follow within an epoch. On HAPT
(thousands of windows) the recipe is the fixed one it always was: batch size 64, momentum 0.99.
Nothing here imports Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

#: The batch size when the data allows it, and the smallest the recipe picks by itself.
DEFAULT_BATCH_SIZE = 64
MIN_BATCH_SIZE = 8
#: Steps per epoch below which the batch size is lowered and the momentum with it.
MIN_STEPS_PER_EPOCH = 32
#: Keras's BatchNormalization default, kept whenever an epoch has enough steps.
DEFAULT_BN_MOMENTUM = 0.99
#: The lowest momentum the recipe picks by itself (an average over the last ~2 steps).
MIN_BN_MOMENTUM = 0.5
#: The guard: training-mode accuracy at least this high ...
GUARD_TRAIN_ACCURACY = 0.9
#: ... and inference-mode accuracy on the same windows this much lower, or validation within
#: this much of chance, is reported.
GUARD_GAP = 0.3
GUARD_CHANCE_MARGIN = 0.1


@dataclass(frozen=True)
class Recipe:
    """The batch size, steps per epoch and BatchNorm momentum of one run, and why."""

    windows: int
    batch_size: int
    steps_per_epoch: int
    bn_momentum: float
    batch_chosen: str
    momentum_chosen: str

    def describe(self) -> str:
        """One line for the console."""
        return (f"recipe: batch size {self.batch_size} ({self.batch_chosen}), "
                f"{self.steps_per_epoch} steps per epoch over {self.windows} training windows, "
                f"BatchNorm momentum {self.bn_momentum:g} ({self.momentum_chosen})")

    def to_dict(self) -> Dict[str, Any]:
        return {"windows": self.windows, "batch_size": self.batch_size,
                "steps_per_epoch": self.steps_per_epoch, "bn_momentum": self.bn_momentum,
                "batch_chosen": self.batch_chosen, "momentum_chosen": self.momentum_chosen}


def choose_recipe(windows: int, batch_size: Optional[int] = None,
                  bn_momentum: Optional[float] = None) -> Recipe:
    """The recipe for `windows` training windows; a given batch size or momentum is kept.

    Batch size: 64 when that gives at least `MIN_STEPS_PER_EPOCH` steps, else the largest
    power of two that does, but not below 8. Momentum: 0.99 when an epoch has at least
    `MIN_STEPS_PER_EPOCH` steps, else 1 - 1/steps (the moving averages then span about one
    epoch), but not below 0.5.
    """
    windows = max(int(windows), 1)
    if batch_size is not None:
        batch, why = int(batch_size), "--batch-size"
    elif math.ceil(windows / DEFAULT_BATCH_SIZE) >= MIN_STEPS_PER_EPOCH:
        batch, why = DEFAULT_BATCH_SIZE, "default"
    else:
        fit = 2 ** int(math.floor(math.log2(max(windows / MIN_STEPS_PER_EPOCH, 1))))
        batch = max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, fit))
        why = f"adapted: {MIN_STEPS_PER_EPOCH}+ steps per epoch wanted"
    steps = math.ceil(windows / batch)
    if bn_momentum is not None:
        momentum, mwhy = float(bn_momentum), "--bn-momentum"
    elif steps >= MIN_STEPS_PER_EPOCH:
        momentum, mwhy = DEFAULT_BN_MOMENTUM, "default"
    else:
        momentum = round(max(MIN_BN_MOMENTUM, 1.0 - 1.0 / steps), 3)
        mwhy = f"adapted to {steps} steps per epoch"
    return Recipe(windows, batch, steps, momentum, why, mwhy)


def guard(train_mode_accuracy: float, train_accuracy: float, val_accuracy: float,
          num_classes: int, recipe: Recipe) -> List[str]:
    """One-line warnings when inference-mode outputs contradict training-mode ones.

    `train_mode_accuracy` is what Keras reported while training (BatchNorm on batch
    statistics, dropout, augmentation) at the selected epoch; `train_accuracy` the selected
    model's inference-mode accuracy on the same training windows.
    """
    if not train_mode_accuracy >= GUARD_TRAIN_ACCURACY:
        return []
    chance = 1.0 / max(num_classes, 1)
    adapted = choose_recipe(recipe.windows)
    fix = (f"--batch-size {adapted.batch_size}" if adapted.batch_size < recipe.batch_size
           else f"--bn-momentum {min(adapted.bn_momentum, 0.9):g}")
    if train_accuracy < train_mode_accuracy - GUARD_GAP:
        return [f"warning: the model scores {train_accuracy:.2f} on its own training windows "
                f"in inference mode but {train_mode_accuracy:.2f} while training; likely cause: "
                f"BatchNorm's moving statistics did not settle in {recipe.steps_per_epoch} "
                f"steps per epoch (batch size {recipe.batch_size}, momentum "
                f"{recipe.bn_momentum:g}); try {fix}"]
    if val_accuracy <= chance + GUARD_CHANCE_MARGIN:
        return [f"warning: validation accuracy {val_accuracy:.2f} is at chance "
                f"({num_classes} classes) while training reaches {train_mode_accuracy:.2f}; "
                "likely cause: the validation subjects differ from the training ones (units, "
                "rate, labels) or there are too few training subjects; check --acc-unit, "
                "--gyro-unit and --rate, or try --augment"]
    return []
