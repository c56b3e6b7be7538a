"""Synthetic waist-phone recordings: deterministic, learnable and fast (numpy only).

Tests, demos and CI need HAR data that does not come from a download. The generator models a
phone on the waist, body frame x up, y left, z forward, accelerometer reading +1 g "up" at rest:

* static postures differ by the direction of gravity (standing upright, sitting tilted ~37°,
  laying on the back ~90°), with slow postural drift;
* the three walking kinds differ by step frequency, bounce amplitude and forward lean
  (upstairs: slow, small, leaning forward; downstairs: fast, hard steps);
* each subject wears the phone at a slightly different tilt and walks at their own cadence and
  vigour, so models must generalise across subjects; every session adds sensor noise;
* with `transitions=True`, posture changes are smooth rotations labelled with the HAPT
  transition ids 7..12, other activity changes get a short unlabelled (-1) stretch, and each
  recording starts with one unlabelled second.

The same arguments always give the same samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from har_runtime.contract.labels import UNLABELLED
from har_runtime.contract.recording import Recording

SYNTHETIC_RATE_HZ = 50.0
ACTIVITIES: Tuple[int, ...] = (1, 2, 3, 4, 5, 6)
_ACC_NOISE_G = 0.015
_GYRO_NOISE_RAD_S = 0.02
_MAX_TILT_RAD = np.deg2rad(8.0)

#: Gravity ("up") direction in the body frame for each static posture.
_POSTURE_UP: Dict[int, Tuple[float, float, float]] = {
    4: (0.8, 0.0, 0.6),     # sitting: pelvis tilted back
    5: (1.0, 0.0, 0.0),     # standing: upright
    6: (0.05, 0.25, 0.97),  # laying: on the back
}
#: (from posture, to posture) -> HAPT transition label.
_TRANSITIONS: Dict[Tuple[int, int], int] = {
    (5, 4): 7, (4, 5): 8, (4, 6): 9, (6, 4): 10, (5, 6): 11, (6, 5): 12,
}


@dataclass(frozen=True)
class _Gait:
    step_hz: float
    bounce_g: float
    forward_g: float
    sway_g: float
    lean_deg: float
    gyro_rad_s: float


_GAITS: Dict[int, _Gait] = {
    1: _Gait(step_hz=1.9, bounce_g=0.30, forward_g=0.15, sway_g=0.08, lean_deg=0.0,
             gyro_rad_s=0.6),
    2: _Gait(step_hz=1.45, bounce_g=0.22, forward_g=0.12, sway_g=0.10, lean_deg=12.0,
             gyro_rad_s=0.8),
    3: _Gait(step_hz=2.35, bounce_g=0.55, forward_g=0.25, sway_g=0.12, lean_deg=-5.0,
             gyro_rad_s=1.0),
}


@dataclass(frozen=True)
class _Traits:
    """What stays the same for one subject across sessions."""

    rotation: np.ndarray  # body frame -> sensor frame
    cadence: float
    vigour: float


def synthetic_recording(subject: int, session: int = 0, seed: int = 0,
                        seconds_per_activity: float = 30.0,
                        activities: Sequence[int] = ACTIVITIES,
                        rate_hz: float = SYNTHETIC_RATE_HZ, with_gyro: bool = True,
                        transitions: bool = False) -> Recording:
    """One recording performing `activities` (ids 1..6, repeats allowed) in order.

    Each activity lasts `seconds_per_activity`. acc is in g, gyro in rad/s (None without gyro);
    `source` is "synthetic". Deterministic in (subject, session, seed) and the other arguments.
    """
    _check(subject, session, seed, seconds_per_activity, activities, rate_hz)
    traits = _traits(np.random.default_rng([seed, subject]))
    rng = np.random.default_rng([seed, subject, session, 1])
    n_activity = max(1, int(round(seconds_per_activity * rate_hz)))
    parts: List[Tuple[np.ndarray, np.ndarray, int]] = []
    if transitions:
        parts.append(_static(int(rate_hz), _up(activities[0]), rate_hz, rng) + (UNLABELLED,))
    for i, activity in enumerate(activities):
        if transitions and i > 0:
            parts.append(_junction(activities[i - 1], activity, rate_hz, rng))
        if activity in _GAITS:
            acc, gyro = _walk(n_activity, activity, traits, rate_hz, rng)
        else:
            acc, gyro = _static(n_activity, _up(activity), rate_hz, rng)
        parts.append((acc, gyro, activity))
    acc = np.concatenate([p[0] for p in parts]) @ traits.rotation.T
    gyro = np.concatenate([p[1] for p in parts]) @ traits.rotation.T
    labels = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts])
    acc += rng.normal(0.0, _ACC_NOISE_G, acc.shape)
    gyro += rng.normal(0.0, _GYRO_NOISE_RAD_S, gyro.shape)
    return Recording(subject=subject, session=session, rate_hz=float(rate_hz), acc=acc,
                     labels=labels, gyro=gyro if with_gyro else None, source="synthetic")


def synthetic_recordings(n_subjects: int = 6, seed: int = 0, sessions: int = 1,
                         seconds_per_activity: float = 30.0,
                         activities: Sequence[int] = ACTIVITIES,
                         rate_hz: float = SYNTHETIC_RATE_HZ, with_gyro: bool = True,
                         transitions: bool = False) -> List[Recording]:
    """`sessions` recordings for each of subjects 1..n_subjects (see `synthetic_recording`)."""
    if n_subjects < 1 or sessions < 1:
        raise ValueError("n_subjects and sessions must be >= 1")
    return [synthetic_recording(subject, session, seed, seconds_per_activity, activities,
                                rate_hz, with_gyro, transitions)
            for subject in range(1, n_subjects + 1) for session in range(sessions)]


def _check(subject, session, seed, seconds, activities, rate_hz) -> None:
    if min(subject, session, seed) < 0:
        raise ValueError("subject, session and seed must be >= 0")
    if not seconds > 0 or not rate_hz > 0:
        raise ValueError("seconds_per_activity and rate_hz must be > 0")
    if not activities or any(a not in ACTIVITIES for a in activities):
        raise ValueError(f"activities must be a non-empty sequence of ids in {ACTIVITIES}")


def _traits(rng: np.random.Generator) -> _Traits:
    axis = rng.normal(size=3)
    rotation = _rotation(axis / np.linalg.norm(axis), rng.uniform(0.0, _MAX_TILT_RAD))
    return _Traits(rotation=rotation, cadence=rng.uniform(0.93, 1.07),
                   vigour=rng.uniform(0.85, 1.15))


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation matrix about a unit axis."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _up(activity: int) -> np.ndarray:
    """Mean gravity direction of an activity (walking kinds: upright, leaning by their gait)."""
    if activity in _GAITS:
        lean = np.deg2rad(_GAITS[activity].lean_deg)
        return np.array([np.cos(lean), 0.0, np.sin(lean)])
    up = np.array(_POSTURE_UP[activity])
    return up / np.linalg.norm(up)


def _drift(n: int, rate_hz: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random (n, 3) wander: random values at 1 s knots, linearly interpolated."""
    knots = int(n / rate_hz) + 2
    t = np.arange(n) / rate_hz
    values = rng.normal(0.0, scale, (knots, 3))
    return np.stack([np.interp(t, np.arange(knots), values[:, c]) for c in range(3)], axis=1)


def _static(n: int, up: np.ndarray, rate_hz: float, rng: np.random.Generator):
    """A held posture: gravity along `up` plus slow postural drift."""
    drift = _drift(n, rate_hz, 0.02, rng)
    # Gravity seen from a body turning at w moves as d(up)/dt = up x w, so w = d(up)/dt x up.
    turning = np.gradient(drift, axis=0) * rate_hz if n > 1 else np.zeros((n, 3))
    return up + drift, np.cross(turning, up)


def _walk(n: int, activity: int, traits: _Traits, rate_hz: float, rng: np.random.Generator):
    """Steps: a bounce with its harmonic along `up`, surge forward, sway at half the step rate."""
    gait = _GAITS[activity]
    freq = gait.step_hz * traits.cadence * (1.0 + _drift(n, rate_hz, 0.02, rng)[:, 0])
    phase = 2.0 * np.pi * np.cumsum(freq) / rate_hz + rng.uniform(0.0, 2.0 * np.pi)
    up = _up(activity)
    forward = np.array([-up[2], 0.0, up[0]])
    left = np.array([0.0, 1.0, 0.0])
    v = traits.vigour
    bounce = v * gait.bounce_g * (np.sin(phase) + 0.35 * np.sin(2.0 * phase + 0.6))
    surge = v * gait.forward_g * np.sin(phase + 1.2)
    sway = v * gait.sway_g * np.sin(0.5 * phase + 0.3)
    acc = up + np.outer(bounce, up) + np.outer(surge, forward) + np.outer(sway, left)
    g = v * gait.gyro_rad_s
    gyro = np.stack([0.3 * g * np.sin(0.5 * phase), g * np.sin(phase + 0.5),
                     0.5 * g * np.sin(0.5 * phase + 1.0)], axis=1)
    return acc, gyro


def _junction(before: int, after: int, rate_hz: float, rng: np.random.Generator):
    """The stretch between two activities: a labelled posture transition, or unlabelled."""
    label = _TRANSITIONS.get((before, after), UNLABELLED)
    seconds = rng.uniform(2.5, 4.0) if label != UNLABELLED else 1.0
    acc, gyro = _turn(max(2, int(round(seconds * rate_hz))), _up(before), _up(after), rate_hz)
    return acc, gyro, label


def _turn(n: int, start: np.ndarray, end: np.ndarray, rate_hz: float):
    """Rotate gravity from `start` to `end` with a smooth profile, plus the effort's surge."""
    tau = np.linspace(0.0, 1.0, n)
    ease = 0.5 - 0.5 * np.cos(np.pi * tau)
    angle = np.arccos(np.clip(start @ end, -1.0, 1.0))
    cross = np.cross(start, end)
    axis = cross / np.linalg.norm(cross) if np.linalg.norm(cross) > 1e-9 else np.zeros(3)
    # Rodrigues' formula; the axis is perpendicular to `start`, so its third term vanishes.
    theta = (angle * ease)[:, None]
    up = start * np.cos(theta) + np.cross(axis, start) * np.sin(theta)
    surge = 0.15 * np.sin(np.pi * tau)[:, None] * np.array([0.0, 0.0, 1.0])
    rate = angle * 0.5 * np.pi * np.sin(np.pi * tau) * rate_hz / max(n - 1, 1)
    # Gravity turning from start to end about `axis` means the body turns the other way.
    gyro = -np.outer(rate, axis)
    return up + surge, gyro
