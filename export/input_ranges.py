"""Per-channel int8 input ranges, folded into the float standardisation and the first layer.

A full-int8 input tensor has one scale for every channel, and the calibration windows are
clipped to +-`limit` standard deviations (`convert.INPUT_CLIP_STD`) before the converter measures
them. A heavy-tailed channel (a gyroscope axis exceeds 3 sigma in about a quarter of HAPT
windows) then saturates where the Keras model does not, and most int8/Keras disagreements are
such windows. Widening the one shared range would coarsen the accelerometer channels instead.

So channel c is divided by `s_c >= 1` more in the float standardisation the runtime applies
(the bundle's `input_norm` std times `s_c`) and the first convolution's weights for channel c
are multiplied by `s_c`: the float model computes the same function, while channel c now
saturates at +-`limit * s_c` sigma. `s_c = max(1, q_c / limit)` with `q_c` a high percentile
of the channel's |standardised value| over the calibration windows, so light-tailed channels
keep their resolution.

Opt-in (`har-export convert --input-range-percentile 99.9`): on the leaderboard models it did not
raise int8/Keras agreement (docs/RESULTS.md, "per-channel int8 input ranges"), because the wider
first-layer weights lose int8 resolution of their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np

from har_export.convert import input_readers
from har_export.errors import OptionError
from har_runtime.contract.input_norm import InputNorm


@dataclass(frozen=True)
class InputRanges:
    """What the fold did: each channel's extra divisor (1.0: unchanged) and why it was skipped."""

    scales: Tuple[float, ...]
    percentile: Optional[float]
    skipped: str = ""

    @property
    def applied(self) -> bool:
        return any(s != 1.0 for s in self.scales)

    def to_dict(self) -> dict:
        return {"percentile": self.percentile, "scales": [round(s, 6) for s in self.scales],
                "skipped": self.skipped or None}


def channel_scales(standardised: np.ndarray, limit: float, percentile: float) -> np.ndarray:
    """`max(1, q_c / limit)` per channel of standardised windows (n, window, C), float32."""
    if not 0.0 < percentile <= 100.0:
        raise OptionError(f"input range percentile must be in (0, 100], got {percentile}")
    values = np.abs(np.asarray(standardised, np.float32)).reshape(-1, standardised.shape[-1])
    return np.maximum(1.0, np.percentile(values, percentile, axis=0) / limit).astype(np.float32)


def _first_convolutions(graph: Any) -> Optional[List[Any]]:
    """The layers that read `graph`'s input, through nested models; None unless every one is
    a plain Conv1D (channels last, one group). A layer shared with another input would be
    changed there too; the float32 parity gate (max |diff| 1e-4) would then refuse the bundle."""
    import keras

    readers = input_readers(graph)
    if not readers:
        return None
    found: List[Any] = []
    for op in readers:
        if isinstance(op, keras.Model):
            inner = _first_convolutions(op)
            if inner is None:
                return None
            found.extend(inner)
        elif (type(op) is keras.layers.Conv1D and op.groups == 1
              and op.data_format == "channels_last"):
            found.append(op)
        else:
            return None
    return found


def fold_input_ranges(core: Any, norm: Optional[InputNorm], calibration: np.ndarray,
                      limit: float, percentile: Optional[float]
                      ) -> Tuple[Any, Optional[InputNorm], InputRanges]:
    """(graph, standardisation, record) with per-channel input ranges folded in.

    `core` and `norm` come from `split_input_norm`, `calibration` is in sensor units. The graph
    returned is a copy (the caller's model keeps its weights: it is the parity reference);
    unchanged when `percentile` is None, no channel needs it, or the input does not feed only
    Conv1D layers (then the record says why).
    """
    channels = int(core.inputs[0].shape[-1])
    unchanged = (1.0,) * channels
    if percentile is None or norm is None:
        reason = "disabled" if percentile is None else "the model standardises in its graph"
        return core, norm, InputRanges(unchanged, percentile, reason)
    scales = channel_scales(norm.apply(calibration), limit, percentile)
    if np.all(scales == 1.0):
        return core, norm, InputRanges(unchanged, percentile)
    if _first_convolutions(core) is None:
        return core, norm, InputRanges(unchanged, percentile,
                                       "the input feeds layers other than Conv1D")
    import keras

    copy = keras.models.clone_model(core, recursive=True)
    copy.set_weights(core.get_weights())
    for conv in _first_convolutions(copy):
        kernel = np.asarray(conv.kernel.numpy())  # (width, in channels, filters)
        conv.kernel.assign(kernel * scales.reshape(1, -1, 1))
    wider = InputNorm(norm.mean, tuple(float(v) for v in norm.arrays()[1] * scales))
    return copy, wider, InputRanges(tuple(float(s) for s in scales), percentile)
