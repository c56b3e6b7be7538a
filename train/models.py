"""Model registry: every model is a Keras functional graph of TFLite-builtin layers only.

Each model opens with a `Normalization` layer holding per-channel training statistics, so the
saved model (and everything exported from it) takes raw sensor units, exactly what the runtime's
windower produces. Layers are restricted to ones that convert to TFLite builtins (convolutions,
batch norm, ReLU, Add, pooling, Dense, Dropout, softmax, and the hard tanh of `input_clip`).

Keras is imported inside the builders, not at module top: the registry must be listable (CLI
choices, help) without loading a backend, and the backend is only chosen when Keras first loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence, Tuple

import numpy as np

from har_runtime.contract.spec import PreprocessSpec
from har_train.errors import ModelError

#: Parameter budget of the MCU-class model (int8 weights fit in ~20 kB of flash).
MCU_PARAM_BUDGET = 20_000



@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its builder and a one-line description for `har-train models`."""

    name: str
    description: str
    build: Callable[..., Any]


def _normalized_input(spec: PreprocessSpec, norm_mean, norm_var, input_clip: float = 0.0):
    """Input in raw units followed by the fixed per-channel standardisation.

    `input_clip` > 0 saturates the standardised input at +-`input_clip` standard deviations:
    the standardisation divides by `input_clip` more and a hard tanh clips to [-1, 1]. A
    full-int8 input tensor saturates anyway; when the model does so itself, float and int8 see
    the same values and har-export calibrates the input to exactly that range."""
    from keras import layers

    if input_clip < 0:
        raise ModelError(f"input_clip must be >= 0 (0: none), got {input_clip!r}")
    inputs = layers.Input(shape=spec.input_shape, name="window")
    if input_clip > 0:
        norm_var = [v * input_clip ** 2 for v in norm_var]
    x = layers.Normalization(axis=-1, mean=norm_mean, variance=norm_var, name="normalize")(inputs)
    if input_clip > 0:
        x = layers.Activation("hard_tanh", name="input_clip")(x)
    return inputs, x


def _classifier_head(x, spec: PreprocessSpec, dropout: float):
    from keras import layers

    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)


def _conv_bn_relu(x, filters: int, kernel: int, name: str, dilation: int = 1, strides: int = 1,
                  noise: float = 0.0):
    from keras import layers

    x = layers.Conv1D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
                      use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return _train_noise(layers.ReLU(name=f"{name}_relu")(x), noise, name)


def _train_noise(x, stddev: float, name: str):
    """Gaussian noise on an activation during training only (an identity at inference, so it
    vanishes from the export): it stands in for int8 rounding noise, teaching the model margins
    that survive quantisation. stddev 0 adds no layer."""
    from keras import layers

    return layers.GaussianNoise(stddev, name=f"{name}_noise")(x) if stddev > 0 else x


def build_seed_cnn(spec: PreprocessSpec, norm_mean, norm_var, filters: int = 64,
                   kernel: int = 16, dropout: float = 0.0, input_clip: float = 0.0):
    """The KCC2020 tutorial baseline: one Conv1D -> BN -> ReLU -> global average -> softmax."""
    import keras
    from keras import layers

    inputs, x = _normalized_input(spec, norm_mean, norm_var, input_clip)
    x = _conv_bn_relu(x, filters, kernel, "conv1")
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, _classifier_head(x, spec, dropout), name="seed_cnn")


def _residual_block(x, filters: int, kernel: int, dilation: int, name: str):
    """Two dilated convolutions with a (projected when needed) identity shortcut."""
    from keras import layers

    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv1D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = _conv_bn_relu(x, filters, kernel, f"{name}_a", dilation=dilation)
    y = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="same", use_bias=False,
                      name=f"{name}_b_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_b_bn")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet1d(spec: PreprocessSpec, norm_mean, norm_var,
                   filters: Sequence[int] = (32, 64, 64), dilations: Sequence[int] = (1, 2, 4),
                   kernel: int = 5, dropout: float = 0.3, input_clip: float = 0.0):
    """Residual 1-D CNN: stem, dilated residual blocks with pooling between, ~85 k params.

    Dilation widens the receptive field to most of a 2.56 s window without more weights;
    pooling after each block halves the time axis so CPU training stays fast.
    """
    import keras
    from keras import layers

    if len(filters) != len(dilations):
        raise ModelError("resnet1d: filters and dilations must have the same length")
    inputs, x = _normalized_input(spec, norm_mean, norm_var, input_clip)
    x = _conv_bn_relu(x, filters[0], 7, "stem")
    for i, (f, d) in enumerate(zip(filters, dilations)):
        x = _residual_block(x, int(f), kernel, int(d), f"block{i + 1}")
        if i < len(filters) - 1:
            x = layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, _classifier_head(x, spec, dropout), name="resnet1d")


def _ds_block(x, filters: int, kernel: int, name: str, noise: float = 0.0):
    """Depthwise (per-channel temporal) then pointwise (channel mixing) convolution."""
    from keras import layers

    x = layers.DepthwiseConv1D(kernel, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = _train_noise(layers.ReLU(name=f"{name}_dw_relu")(x), noise, f"{name}_dw")
    return _conv_bn_relu(x, filters, 1, f"{name}_pw", noise=noise)


def build_tiny_dscnn(spec: PreprocessSpec, norm_mean, norm_var,
                     filters: Sequence[int] = (32, 48, 64), kernel: int = 9,
                     dropout: float = 0.2, quant_noise: float = 0.0, input_clip: float = 0.0):
    """MCU-class depthwise-separable CNN (< 20 k params): strided stem, three DS blocks.

    `quant_noise` > 0 adds training-only Gaussian noise of that stddev after every activation
    (see `_train_noise`); the exported model is the same graph either way."""
    import keras

    inputs, x = _normalized_input(spec, norm_mean, norm_var, input_clip)
    x = _dscnn_trunk(x, filters, kernel, float(quant_noise))
    return keras.Model(inputs, _classifier_head(x, spec, dropout), name="tiny_dscnn")


def _dscnn_trunk(x, filters: Sequence[int], kernel: int, noise: float = 0.0):
    """tiny_dscnn's feature extractor: strided stem, DS blocks with pooling, global average."""
    from keras import layers

    x = _conv_bn_relu(x, int(filters[0]), 8, "stem", strides=2, noise=noise)
    for i, f in enumerate(filters):
        x = _ds_block(x, int(f), kernel, f"ds{i + 1}", noise=noise)
        if i < len(filters) - 1:
            x = layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
    return layers.GlobalAveragePooling1D(name="gap")(x)


def _posture_features(normalized, name: str):
    """Per-window channel means of the normalised input: the sensor's mean orientation.

    With the total accelerometer the mean is the gravity direction, the cue that tells sitting
    from standing; convolutions followed by ReLU and average pooling only see it indirectly.
    """
    from keras import layers

    return layers.GlobalAveragePooling1D(name=name)(normalized)


def build_tiny_dscnn_posture(spec: PreprocessSpec, norm_mean, norm_var,
                        filters: Sequence[int] = (32, 48, 64), kernel: int = 9,
                        dropout: float = 0.2, hidden: int = 32, input_clip: float = 0.0):
    """tiny_dscnn plus a posture branch: the window's mean normalised input joins the pooled
    features, then a small dense layer mixes them (< 20 k params)."""
    import keras
    from keras import layers

    inputs, normalized = _normalized_input(spec, norm_mean, norm_var, input_clip)
    x = _dscnn_trunk(normalized, filters, kernel)
    x = layers.Concatenate(name="with_posture")([x, _posture_features(normalized, "posture")])
    x = layers.Dense(int(hidden), activation="relu", name="mix")(x)
    return keras.Model(inputs, _classifier_head(x, spec, dropout), name="tiny_dscnn_posture")


MODELS: Dict[str, ModelInfo] = {
    info.name: info for info in (
        ModelInfo("seed_cnn", "KCC2020 tutorial baseline: Conv1D(64, 16) + BN + ReLU + GAP",
                  build_seed_cnn),
        ModelInfo("resnet1d", "dilated residual 1-D CNN (3 blocks, dropout), the accurate one",
                  build_resnet1d),
        ModelInfo("tiny_dscnn", "depthwise-separable CNN under 20 k params, for MCUs / int8",
                  build_tiny_dscnn),
        ModelInfo("tiny_dscnn_posture", "tiny_dscnn + mean-orientation branch and a dense mixer "
                  "(< 20 k params, int8)", build_tiny_dscnn_posture),
    )
}


def _check_stats(spec: PreprocessSpec, norm_mean, norm_var) -> Tuple[np.ndarray, np.ndarray]:
    channels = spec.input_shape[1]
    mean = np.asarray(norm_mean, dtype=np.float64).reshape(-1)
    var = np.asarray(norm_var, dtype=np.float64).reshape(-1)
    if mean.shape != (channels,) or var.shape != (channels,):
        raise ModelError(f"normalisation statistics must have {channels} values per channel, "
                         f"got mean {mean.shape} and variance {var.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0)):
        raise ModelError("normalisation statistics must be finite with variance >= 0")
    return mean, var


def build_model(name: str, spec: PreprocessSpec, norm_mean, norm_var, **opts):
    """Build a registered model for `spec`; `norm_mean`/`norm_var` are per model channel."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    mean, var = _check_stats(spec, norm_mean, norm_var)
    try:
        return MODELS[name].build(spec, mean.tolist(), var.tolist(), **opts)
    except TypeError as exc:
        raise ModelError(f"{name}: bad model option ({exc})") from None


def count_params(model) -> int:
    """Total weights, trainable and not (batch-norm statistics count; the fixed normalisation
    constants do not)."""
    return int(model.count_params())


def param_table(spec: PreprocessSpec) -> Dict[str, int]:
    """Parameter count of every registered model for `spec` (unit statistics)."""
    channels = spec.input_shape[1]
    return {name: count_params(build_model(name, spec, np.zeros(channels), np.ones(channels)))
            for name in MODELS}
