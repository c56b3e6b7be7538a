"""Training-time augmentation in raw sensor units (numpy) and the batch feeder that applies it.

A phone sits in a pocket at a slightly different angle for every person, so the main
augmentation rotates the sensor frame: one random rotation per window, applied identically to
every 3-axis group (accelerometer, gyroscope, body/gravity parts), since they share one frame.
Amplitude scaling and gaussian jitter add robustness to device gain and noise differences.

Each batch draws from its own generator seeded by (seed, epoch, batch index), so a run is
reproducible whatever order or worker fetches the batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; a zero turns that augmentation off.

    `rotation_deg` is the largest rotation angle (about a uniformly random axis); `scale_sigma`
    the standard deviation of the per-window gain around 1; `jitter_sigma` the noise standard
    deviation as a fraction of each channel's training standard deviation. The defaults live
    in `har_train.fit.TrainConfig`.
    """

    rotation_deg: float
    scale_sigma: float
    jitter_sigma: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise ValueError("rotation_deg must be in [0, 180]")
        if not (0.0 <= self.scale_sigma < 1.0 and 0.0 <= self.jitter_sigma <= 10.0):
            raise ValueError("scale_sigma must be in [0, 1) and jitter_sigma in [0, 10]")

    @property
    def enabled(self) -> bool:
        return self.rotation_deg > 0 or self.scale_sigma > 0 or self.jitter_sigma > 0


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0.0)


def triads(channel_names: Sequence[str]) -> List[List[int]]:
    """Index triples [x, y, z] of every 3-axis sensor group among the model's channel names."""
    groups = {}
    for i, name in enumerate(channel_names):
        prefix, _, axis = name.rpartition("_")
        if axis in ("x", "y", "z"):
            groups.setdefault(prefix, {})[axis] = i
    return [[g["x"], g["y"], g["z"]] for g in groups.values() if len(g) == 3]


def random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """(n, 3, 3) rotation matrices: uniform random axis, angle uniform in [-max_deg, max_deg]."""
    axis = rng.normal(size=(n, 3))
    axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-12)
    angle = rng.uniform(-1.0, 1.0, size=n) * math.radians(max_deg)
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    # Rodrigues: R = I + sin(a) K + (1 - cos(a)) K^2
    return np.eye(3)[None] + sin * k + (1.0 - cos) * (k @ k)


def rotate(x: np.ndarray, rotations: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Rotate each window's 3-axis groups by that window's matrix (same matrix for all groups)."""
    out = np.array(x, dtype=np.float32, copy=True)
    for idx in groups:
        out[:, :, idx] = np.einsum("nij,ntj->nti", rotations, x[:, :, idx]).astype(np.float32)
    return out


def augment_batch(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig,
                  groups: Sequence[Sequence[int]], channel_std: np.ndarray) -> np.ndarray:
    """Rotation, then per-window gain, then per-sample jitter; returns a new float32 array."""
    out = np.array(x, dtype=np.float32, copy=True)
    n = out.shape[0]
    if config.rotation_deg > 0 and groups:
        out = rotate(out, random_rotations(rng, n, config.rotation_deg), groups)
    if config.scale_sigma > 0:
        out *= rng.normal(1.0, config.scale_sigma, size=(n, 1, 1)).astype(np.float32)
    if config.jitter_sigma > 0:
        sigma = config.jitter_sigma * np.asarray(channel_std, dtype=np.float32)
        out += rng.normal(size=out.shape).astype(np.float32) * sigma
    return out


class WindowFeeder(keras.utils.PyDataset):
    """Shuffled, optionally augmented batches of (x, target y[, sample weight]) per epoch.

    The target is the one-hot label, or with `soft_targets` = (probabilities (n, K), weight w)
    `(1 - w) * one-hot + w * probabilities` (distillation, see har_train.distill).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int,
                 seed: int, channel_names: Sequence[str],
                 config: AugmentConfig = NO_AUGMENT, sample_weight: Optional[np.ndarray] = None,
                 soft_targets: Optional[Tuple[np.ndarray, float]] = None):
        super().__init__()
        if len(x) == 0:
            raise ValueError("no training windows to feed")
        if soft_targets is not None and np.shape(soft_targets[0]) != (len(x), num_classes):
            raise ValueError("soft targets must be (windows, classes)")
        self.x, self.y, self.w, self.soft = x, y, sample_weight, soft_targets
        self.num_classes, self.batch_size, self.seed = num_classes, batch_size, seed
        self.config = config
        self.groups = triads(channel_names)
        self.channel_std = x.std(axis=(0, 1)) if config.jitter_sigma > 0 else None
        self.epoch = 0
        self._order = self._shuffle()

    def _shuffle(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.x[rows]
        if self.config.enabled:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            x = augment_batch(x, rng, self.config, self.groups, self.channel_std)
        y = np.eye(self.num_classes, dtype=np.float32)[self.y[rows]]
        if self.soft is not None:
            probs, weight = self.soft
            y = ((1.0 - weight) * y + weight * probs[rows]).astype(np.float32)
        if self.w is None:
            return x, y
        return x, y, self.w[rows].astype(np.float32)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._shuffle()
