"""A recording: one continuous session of one subject, the unit every data source produces."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from har_runtime.contract.spec import ACC_CHANNELS, GYRO_CHANNELS, PreprocessSpec


@dataclass(frozen=True)
class Recording:
    """Regularly sampled sensor data of one (subject, session).

    `acc` is (n, 3) in g, `gyro` (n, 3) in rad/s or None, `labels` (n,) source label ids
    (-1 unlabelled). Sources convert to these units on the way in.
    """

    subject: int
    session: int
    rate_hz: float
    acc: np.ndarray
    labels: np.ndarray
    gyro: Optional[np.ndarray] = None
    source: str = ""

    def __post_init__(self) -> None:
        n = self.acc.shape[0]
        if self.acc.ndim != 2 or self.acc.shape[1] != 3:
            raise ValueError(f"acc must be (n, 3), got {self.acc.shape}")
        if self.gyro is not None and self.gyro.shape != (n, 3):
            raise ValueError(f"gyro must be ({n}, 3), got {self.gyro.shape}")
        if self.labels.shape != (n,):
            raise ValueError(f"labels must be ({n},), got {self.labels.shape}")

    def __len__(self) -> int:
        return int(self.acc.shape[0])

    @property
    def times(self) -> np.ndarray:
        """Sample times in seconds from the recording's start."""
        return np.arange(len(self), dtype=np.float64) / self.rate_hz

    def frames(self, channels) -> np.ndarray:
        """The named channels as one (n, len(channels)) float64 array."""
        cols = []
        for name in channels:
            if name in ACC_CHANNELS:
                cols.append(self.acc[:, ACC_CHANNELS.index(name)])
            elif name in GYRO_CHANNELS:
                if self.gyro is None:
                    raise ValueError(f"recording {self.subject}/{self.session} has no gyroscope")
                cols.append(self.gyro[:, GYRO_CHANNELS.index(name)])
            else:
                raise ValueError(f"unknown channel {name!r}")
        return np.stack(cols, axis=1).astype(np.float64)

    def spec_frames(self, spec: PreprocessSpec) -> np.ndarray:
        """Frames in the spec's channel order, checking the rate matches."""
        if abs(self.rate_hz - spec.sample_rate_hz) > 1e-9:
            raise ValueError(f"recording is {self.rate_hz} Hz, spec wants "
                             f"{spec.sample_rate_hz} Hz; resample it first")
        return self.frames(spec.channels)
