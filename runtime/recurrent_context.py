"""Temporal context learned from streams: a recurrent head over the window outputs.

The base model answers for one window; the head (a GRU trained by `har-train context` on the
out-of-fold outputs of continuous training recordings) carries a state vector from window to
window, so what came before (the stand_to_sit the model saw a minute ago) informs the answer
now. The head is a small float32 TFLite model in the bundle (`context.tflite`, sha256 in
bundle.json's `files`) with two inputs and two outputs, told apart by their widths:

    features (1, K), state (1, H)  ->  probabilities (1, K), next state (1, H)

`head_features` is the one definition of what it is fed, used by training too. The state is
one vector per device stream, zeroed on every gap; one interpreter serves every stream of a
process (the daemon is single-threaded). numpy and the TFLite interpreter only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.interpreter import ModelLoadError, load_interpreter, resolve_interpreter

METHOD = "gru"
#: Probabilities are floored here before the log: a 0 from an int8 output would be -inf.
LOG_FLOOR = 1e-4
_FIELDS = ("method", "labels", "file", "state_size", "floor", "parity", "training")


class RecurrentContextError(ValueError):
    """Unusable recurrent-context settings or head model (one-line message)."""


def head_features(probs: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    """What the head sees for windows' probabilities (..., K): log(max(p, floor)), float32."""
    return np.log(np.maximum(np.asarray(probs, np.float32), np.float32(floor)))


@dataclass(frozen=True)
class RecurrentContext:
    """bundle.json's `context` for a recurrent head; `parity` and `training` are records."""

    labels: Tuple[str, ...]
    file: str
    state_size: int
    floor: float = LOG_FLOOR
    parity: Optional[Dict[str, Any]] = None
    training: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise RecurrentContextError("a recurrent context needs at least two labels")
        if not (isinstance(self.state_size, int) and 1 <= self.state_size <= 4096) \
                or self.state_size == len(self.labels):
            # Equal widths would make the head's features and state inputs indistinguishable.
            raise RecurrentContextError(
                f"context state_size must be 1..4096 and differ from the {len(self.labels)} "
                f"labels, got {self.state_size!r}")
        if not 0 < self.floor < 1:
            raise RecurrentContextError(f"context floor must be in (0, 1), got {self.floor!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The bundle.json `context` object."""
        return {"method": METHOD, "labels": list(self.labels), "file": self.file,
                "state_size": self.state_size, "floor": self.floor,
                "parity": self.parity or {}, "training": self.training or {}}

    @classmethod
    def from_dict(cls, data: Any) -> "RecurrentContext":
        """Settings from bundle.json; RecurrentContextError for anything malformed."""
        if not isinstance(data, dict) or data.get("method") != METHOD:
            raise RecurrentContextError(f"context must be an object with method {METHOD!r}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise RecurrentContextError(f"unknown context fields {unknown}")
        labels, file, size = data.get("labels"), data.get("file"), data.get("state_size")
        floor = data.get("floor", LOG_FLOOR)
        if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
            raise RecurrentContextError("context labels must be a list of names")
        if not isinstance(file, str) or isinstance(size, bool) or not isinstance(size, int):
            raise RecurrentContextError("context file must be a name and state_size an integer")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)):
            raise RecurrentContextError("context floor must be a number")
        records = [data.get("parity") or {}, data.get("training") or {}]
        if not all(isinstance(r, dict) for r in records):
            raise RecurrentContextError("context parity and training must be objects")
        return cls(tuple(labels), file, size, float(floor), *records)


class RecurrentHead:
    """The bundle's head model, opened once: `step` runs one window for one stream's state."""

    def __init__(self, settings: RecurrentContext, content: bytes, interpreter: Optional[str]):
        self.settings = settings
        _, factory = resolve_interpreter(interpreter)
        try:
            self._interp = load_interpreter(factory, content, 1)
        except ModelLoadError as exc:
            raise RecurrentContextError(f"{settings.file}: {exc}") from None
        k, h = len(settings.labels), settings.state_size
        self._feat, self._state_in = self._pair(self._interp.get_input_details(), k, h, "input")
        self._probs, self._state_out = self._pair(self._interp.get_output_details(), k, h,
                                                  "output")

    def _pair(self, details: Sequence[Dict[str, Any]], k: int, h: int,
              role: str) -> Tuple[int, int]:
        """Tensor indices of the (1, K) and (1, H) float32 tensors among `details`."""
        by_width = {int(d["shape"][-1]): d for d in details
                    if len(d["shape"]) == 2 and np.dtype(d["dtype"]) == np.float32}
        if len(details) != 2 or set(by_width) != {k, h}:
            shapes = [list(d["shape"]) for d in details]
            raise RecurrentContextError(
                f"{self.settings.file}: expected float32 {role}s (1, {k}) and (1, {h}), got "
                f"{shapes}")
        return by_width[k]["index"], by_width[h]["index"]

    def zero_state(self) -> np.ndarray:
        """The state a stream starts from (and returns to after a gap)."""
        return np.zeros((1, self.settings.state_size), np.float32)

    def step(self, probs: Sequence[float], state: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(context probabilities (K,), next state (1, H)) after one window's probabilities."""
        features = head_features(np.asarray(probs, np.float32)[None, :], self.settings.floor)
        self._interp.set_tensor(self._feat, features)
        self._interp.set_tensor(self._state_in, state)
        self._interp.invoke()
        return (self._interp.get_tensor(self._probs)[0],
                self._interp.get_tensor(self._state_out))

    def run(self, probs: np.ndarray) -> np.ndarray:
        """Context probabilities (n, K) of one contiguous sequence, from a zero state."""
        state, out = self.zero_state(), []
        for row in np.asarray(probs, np.float32):
            p, state = self.step(row, state)
            out.append(p)
        return np.asarray(out, np.float32).reshape(-1, len(self.settings.labels))


class RecurrentState:
    """One device stream's head state; `update` maps a window's probabilities to context ones."""

    def __init__(self, head: RecurrentHead):
        self.head = head
        self.reset()

    def reset(self) -> None:
        """Zero the state (after a gap the past says nothing about now)."""
        self._state = self.head.zero_state()

    def update(self, values: Sequence[float]) -> List[float]:
        """Context probabilities (Python floats) after one more window."""
        probs, state = self.head.step(values, self._state)
        if not np.all(np.isfinite(state)):  # a NaN output: pass it on, start afresh
            self.reset()
            return list(values)
        self._state = state
        return probs.tolist()
