"""Quantisation-aware training: fake int8 quantisation of activations, ranges tracked in training.

`quantize_activations(model)` rebuilds a har-train model with an `ActivationQuant` layer after
every ReLU and after the input standardisation. Each layer keeps an exponential moving average
of its input's batch minimum and maximum while training and always passes its input through
`keras.quantizers.fake_quant_with_min_max_vars` with those ranges, so the network learns with
int8 rounding and clipping in the loop. On the TensorFlow backend that call is TF's
`FakeQuantWithMinMaxVars` op, which the TFLite converter reads: the int8 file takes the
trained ranges for those tensors (the representative dataset still calibrates the rest, e.g.
the logits). Weights are not fake-quantised: per-channel int8 rounding of the kernels changed
0.05 % of predictions of a saved model (docs/RESULTS.md, session 8), activation ranges are
where int8 and float part.

This module imports Keras at the top and registers the layer for safe-mode loading: import it
(`har_train.qat`) before loading a QAT model.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

#: Weight of the old range in the moving average (per training step).
RANGE_MOMENTUM = 0.99
#: The standardised input's fixed range, in standard deviations: the int8 input range
#: har-export calibrates (export.convert.INPUT_CLIP_STD), so float and int8 saturate alike.
INPUT_RANGE_STD = 3.0
REGISTERED_PACKAGE = "har_train"


@keras.saving.register_keras_serializable(package=REGISTERED_PACKAGE)
class ActivationQuant(keras.layers.Layer):
    """Fake int8 quantisation of a tensor with one (min, max) range.

    `fixed_range` (lo, hi) pins the range (the standardised input); otherwise it tracks the
    batch extremes by a moving average while training, widened to include 0 as TFLite's int8
    zero point needs. Until the first training step the range is [0, 6] (ReLU6's)."""

    def __init__(self, momentum: float = RANGE_MOMENTUM, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if fixed_range is not None and not float(fixed_range[0]) < 0 < float(fixed_range[1]):
            raise ValueError(f"fixed_range must be (lo < 0 < hi), got {fixed_range!r}")
        self.momentum = float(momentum)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)

    def build(self, input_shape) -> None:
        lo, hi = self.fixed_range or (0.0, 6.0)
        init = keras.initializers.Constant
        self.range_min = self.add_weight(name="range_min", shape=(), initializer=init(lo),
                                         trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer=init(hi),
                                         trainable=False)
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros",
                                     trainable=False)

    def call(self, inputs, training=None):
        lo, hi = self.range_min, self.range_max
        if training and self.fixed_range is None:
            lo, hi = self._track(inputs)
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, lo, hi, num_bits=8)

    def _track(self, inputs):
        batch_lo = ops.minimum(ops.min(ops.stop_gradient(inputs)), 0.0)
        batch_hi = ops.maximum(ops.max(ops.stop_gradient(inputs)), 0.0)
        first = ops.equal(self.steps, 0.0)
        m = self.momentum
        lo = ops.where(first, batch_lo, m * self.range_min + (1.0 - m) * batch_lo)
        hi = ops.where(first, batch_hi, m * self.range_max + (1.0 - m) * batch_hi)
        self.range_min.assign(lo)
        self.range_max.assign(hi)
        self.steps.assign(self.steps + 1.0)
        return lo, hi

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum,
                      fixed_range=None if self.fixed_range is None else list(self.fixed_range))
        return config


def _is_relu(layer: Any) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return True
    return isinstance(layer, keras.layers.Activation) and \
        getattr(layer.activation, "__name__", "") == "relu"


def quantize_activations(model: Any, keep_weights: bool = False) -> Any:
    """A copy of functional `model` (same architecture and constants; new weights, or with
    `keep_weights` the model's own, for QAT fine-tuning of a trained model) with fake
    quantisation after every ReLU and, with a fixed +-INPUT_RANGE_STD range, after the
    leading `Normalization` (the exporter still cuts the graph after that layer)."""
    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if _is_relu(layer):
            return ActivationQuant(name=f"{layer.name}_fq")(out)
        if isinstance(layer, keras.layers.Normalization):
            return ActivationQuant(fixed_range=(-INPUT_RANGE_STD, INPUT_RANGE_STD),
                                   name=f"{layer.name}_fq")(out)
        return out

    quantized = keras.models.clone_model(model, call_function=call)
    if keep_weights:
        for layer in model.layers:
            if layer.weights:
                quantized.get_layer(layer.name).set_weights(layer.get_weights())
    return quantized


def quant_layers(model: Any) -> list:
    """The model's ActivationQuant layers, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, ActivationQuant)]
