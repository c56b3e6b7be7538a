"""Temporal context across windows: a causal posture tracker over the per-window probabilities.

A single 2.56 s window barely tells sitting from standing, but a device that saw the person
sit down knows. `ContextFilter` is a hidden Markov model's forward pass over the classes: the
belief over the current activity is carried from window to window through a transition
matrix and multiplied by each window's probabilities (raised to `power`, floored at
`floor`). `posture_filter` builds the matrix from how postures can follow each other
(`POSTURE_SUCCESSORS`: sitting is entered only through stand_to_sit or lie_to_sit, and so
on), so the transition classes of HAPT's 12-class task carry the posture forward. The
settings live in bundle.json (`context`, docs/BUNDLE.md); the state is one belief vector per
device stream, reset with the smoother on every gap. numpy and plain Python only.
`new_context_state` gives a stream its state for either kind of bundle context: this tracker,
or a learned recurrent head (`har_runtime.recurrent_context`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from har_runtime.recurrent_context import RecurrentHead, RecurrentState

METHOD = "posture_hmm"
#: Which activity can follow which (besides itself), by HAPT label name.
POSTURE_SUCCESSORS: Mapping[str, Tuple[str, ...]] = {
    "walking": ("walking_upstairs", "walking_downstairs", "standing"),
    "walking_upstairs": ("walking", "walking_downstairs", "standing"),
    "walking_downstairs": ("walking", "walking_upstairs", "standing"),
    "standing": ("walking", "walking_upstairs", "walking_downstairs", "stand_to_sit",
                 "stand_to_lie"),
    "sitting": ("sit_to_stand", "sit_to_lie"),
    "laying": ("lie_to_sit", "lie_to_stand"),
    "stand_to_sit": ("sitting",), "sit_to_stand": ("standing",), "sit_to_lie": ("laying",),
    "lie_to_sit": ("sitting",), "stand_to_lie": ("laying",), "lie_to_stand": ("standing",),
}
#: Chosen on validation subjects 17, 21, 26 (docs/RESULTS.md, "Temporal context").
DEFAULT_LEAVE = 0.2
DEFAULT_TRANSITION_STAY = 0.3
DEFAULT_LEAK = 0.01


class ContextError(ValueError):
    """Unusable context settings (one-line message)."""


@dataclass(frozen=True)
class ContextFilter:
    """Settings of the forward filter: `transition[i][j]` is P(next = j | now = i)."""

    labels: Tuple[str, ...]
    transition: Tuple[Tuple[float, ...], ...]
    power: float = 1.0
    floor: float = 1e-4

    def __post_init__(self) -> None:
        k = len(self.labels)
        t = np.asarray(self.transition, dtype=np.float64)
        if k < 2 or t.shape != (k, k):
            raise ContextError(f"context transition must be {k} x {k} for {k} labels")
        if not np.all(np.isfinite(t)) or np.any(t < 0) or \
                not np.allclose(t.sum(axis=1), 1.0, atol=1e-6):
            raise ContextError("context transition rows must be finite, >= 0 and sum to 1")
        if not (np.isfinite(self.power) and 0 < self.power <= 10):
            raise ContextError(f"context power must be in (0, 10], got {self.power!r}")
        if not 0 < self.floor < 1:
            raise ContextError(f"context floor must be in (0, 1), got {self.floor!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The bundle.json `context` object."""
        return {"method": METHOD, "labels": list(self.labels),
                "transition": [list(row) for row in self.transition], "power": self.power,
                "floor": self.floor}

    @classmethod
    def from_dict(cls, data: Any) -> "ContextFilter":
        """Settings from bundle.json; ContextError for anything malformed."""
        if not isinstance(data, dict) or data.get("method") != METHOD:
            raise ContextError(f"context must be an object with method {METHOD!r}")
        unknown = sorted(set(data) - {"method", "labels", "transition", "power", "floor"})
        if unknown:
            raise ContextError(f"unknown context fields {unknown}")
        labels, rows = data.get("labels"), data.get("transition")
        if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels) \
                or not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ContextError("context labels must be names and transition a list of rows")
        values = [v for row in rows for v in row]
        numbers = [data.get("power", 1.0), data.get("floor", 1e-4), *values]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise ContextError("context transition, power and floor must be numbers")
        return cls(tuple(labels), tuple(tuple(float(v) for v in row) for row in rows),
                   float(numbers[0]), float(numbers[1]))


def _successors(labels: Sequence[str], name: str) -> List[str]:
    """`name`'s successors among `labels`; one missing from them (a transition class of a
    6-class task) is replaced by its own successors."""
    out: List[str] = []
    todo, seen = list(POSTURE_SUCCESSORS.get(name, ())), {name}
    while todo:
        nxt = todo.pop(0)
        if nxt in seen:
            continue
        seen.add(nxt)
        if nxt in labels:
            out.append(nxt)
        else:
            todo.extend(POSTURE_SUCCESSORS.get(nxt, ()))
    return out


def posture_filter(labels: Sequence[str], leave: float = DEFAULT_LEAVE,
                   transition_stay: float = DEFAULT_TRANSITION_STAY,
                   leak: float = DEFAULT_LEAK, power: float = 1.0) -> ContextFilter:
    """The posture tracker for `labels`: an activity stays with 1 - `leave`, a transition
    class with `transition_stay`; the rest goes evenly to the successors, and every entry gets
    `leak` more before rows are normalised (no path is ever impossible: the model errs)."""
    if not (0 < leave < 1 and 0 <= transition_stay < 1 and 0 < leak < 1):
        raise ContextError("leave and leak must be in (0, 1), transition_stay in [0, 1)")
    index = {name: i for i, name in enumerate(labels)}
    t = np.full((len(labels), len(labels)), float(leak))
    for name, i in index.items():
        stay = transition_stay if "_to_" in name else 1.0 - leave
        nexts = _successors(labels, name)
        t[i, i] += stay if nexts else 1.0
        for other in nexts:
            t[i, index[other]] += (1.0 - stay) / len(nexts)
    t /= t.sum(axis=1, keepdims=True)
    return ContextFilter(tuple(labels), tuple(tuple(row) for row in t.tolist()), float(power))


class ContextState:
    """One device stream's belief; `update` maps a window's probabilities to filtered ones."""

    def __init__(self, settings: ContextFilter):
        self.settings = settings
        self._t = np.asarray(settings.transition, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget the belief (after a gap the last posture says nothing)."""
        self._belief: Optional[np.ndarray] = None

    def update(self, values: Sequence[float]) -> List[float]:
        """Filtered probabilities (Python floats, summing to 1) after one more window."""
        s = self.settings
        like = np.maximum(np.asarray(values, dtype=np.float64), s.floor) ** s.power
        belief = like if self._belief is None else like * (self._belief @ self._t)
        total = belief.sum()
        if not (np.isfinite(total) and total > 0):  # a NaN output: pass it on, start afresh
            self.reset()
            return list(values)
        self._belief = belief / total
        return self._belief.tolist()


#: What a classifier opened from a bundle carries as its `context`: the tracker's settings,
#: or the opened recurrent head (har_runtime.recurrent_context).
ContextRunner = Union[ContextFilter, RecurrentHead]


def new_context_state(runner: ContextRunner) -> Union[ContextState, RecurrentState]:
    """A fresh per-stream state for a bundle's context (both kinds: reset() and update())."""
    if isinstance(runner, RecurrentHead):
        return RecurrentState(runner)
    return ContextState(runner)
