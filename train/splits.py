"""Subject-wise splits. Windows are never split at random: a person on both sides leaks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_train.errors import SplitError

#: The test subjects of the original UCI HAR split, so our figures compare with published ones.
UCI_TEST_SUBJECTS: Tuple[int, ...] = (2, 4, 9, 10, 12, 13, 18, 20, 24)
DEFAULT_N_VAL = 3
#: Share of the subjects that test when the data names no test subjects (a CSV without a
#: split column): seeded picks, at least one.
TEST_FRACTION = 0.2

@dataclass(frozen=True)
class SubjectSplit:
    """Disjoint subject sets for training, validation (model selection) and test (reporting)."""

    train: Tuple[int, ...]
    val: Tuple[int, ...]
    test: Tuple[int, ...]

    def check(self) -> "SubjectSplit":
        """Raise SplitError unless the three sets are disjoint and train/test are non-empty."""
        sides = {"train": set(self.train), "val": set(self.val), "test": set(self.test)}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = sides[a] & sides[b]
            if both:
                raise SplitError(f"subjects {sorted(both)} are in both {a} and {b}")
        if not self.train or not self.test:
            raise SplitError("train and test subject sets must not be empty")
        return self

    def to_dict(self) -> Dict[str, List[int]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[int]]) -> "SubjectSplit":
        try:
            return cls(*(tuple(int(s) for s in data[k]) for k in ("train", "val", "test"))).check()
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SplitError):
                raise
            raise SplitError(f"split must have integer lists train/val/test: {exc}") from None


def default_split(subjects: Iterable[int], test: Optional[Sequence[int]] = UCI_TEST_SUBJECTS,
                  val: Optional[Sequence[int]] = None, n_val: int = DEFAULT_N_VAL,
                  seed: int = 0) -> SubjectSplit:
    """The `test` subjects that are present (None: seeded picks, see `pick_test`); validation
    carved from the rest (seeded) unless given."""
    subjects = sorted(set(int(s) for s in subjects))
    test_set = pick_test(subjects, seed) if test is None else tuple(
        s for s in subjects if s in set(test))
    rest = [s for s in subjects if s not in set(test_set)]
    if val is None:
        rng = np.random.default_rng(seed)
        val = tuple(sorted(rng.choice(rest, size=min(n_val, max(len(rest) - 1, 0)), replace=False)))
    unknown = set(val) - set(rest)
    if unknown:
        raise SplitError(f"validation subjects {sorted(unknown)} are not training candidates "
                         f"(the test subjects are {list(test_set)}, the others {rest})")
    train = tuple(s for s in rest if s not in set(val))
    return SubjectSplit(train, tuple(int(v) for v in val), test_set).check()


def pick_test(subjects: Sequence[int], seed: int = 0) -> Tuple[int, ...]:
    """`TEST_FRACTION` of the subjects (at least one, never all), seeded."""
    subjects = sorted(set(int(s) for s in subjects))
    if len(subjects) < 2:
        raise SplitError(f"a subject-wise split needs at least 2 subjects, the data has "
                         f"{subjects}; add a subject column (or a split column)")
    n = min(len(subjects) - 1, max(1, round(TEST_FRACTION * len(subjects))))
    # Its own stream, so the validation picks that follow do not shift with the test size.
    rng = np.random.default_rng([seed, 1])
    return tuple(sorted(int(s) for s in rng.choice(subjects, size=n, replace=False)))


def kfold_splits(subjects: Iterable[int], k: int, test: Sequence[int] = UCI_TEST_SUBJECTS,
                 seed: int = 0) -> List[SubjectSplit]:
    """Leave-subjects-out k-fold inside the non-test subjects; each fold validates on 1/k of
    them."""
    subjects = sorted(set(int(s) for s in subjects))
    test_set = tuple(s for s in subjects if s in set(test))
    rest = np.array([s for s in subjects if s not in set(test_set)])
    if not 2 <= k <= len(rest):
        raise SplitError(f"k must be between 2 and {len(rest)} (the non-test subjects)")
    order = np.random.default_rng(seed).permutation(rest)
    folds = np.array_split(order, k)
    out = []
    for fold in folds:
        val = tuple(sorted(int(s) for s in fold))
        train = tuple(int(s) for s in rest if s not in set(val))
        out.append(SubjectSplit(train, val, test_set).check())
    return out
