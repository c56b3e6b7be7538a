"""JSON sample bodies (Sensor Logger's push body, or the plain body) as daemon sample lines.

Sensor Logger (HTTP push and MQTT publish share one schema) sends
``{"messageId": 0, "sessionId": "..", "deviceId": "..", "payload": [{"name": "accelerometer",
"time": <UTC epoch ns>, "values": {"x": .., "y": .., "z": ..}}, ...]}``; each sensor has its
own timestamps. Its "accelerometer" is user acceleration (gravity removed), "totalacceleration"
(Android only) includes gravity, "gravity" is the gravity vector, all in m/s2; "gyroscope" is
in rad/s. The models are trained on total acceleration, so by default the acceleration comes
from "totalacceleration", or from "accelerometer" + "gravity" (`DecodeOptions.acc`).

The plain body is ``{"device": "id", "samples": [[t, ax, ay, az(, gx, gy, gz)], ...]}`` with
`t` in seconds. Both become CSV lines ``device,t,ax,ay,az[,gx,gy,gz]`` (every float written
with repr, so the engine reads back exactly the decoded values); non-finite numbers stay in
the lines so the engine counts them as `nonfinite`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from har_runtime.daemon.lines import DEVICE_ID
from har_runtime.daemon.sources import SourceCounters

#: Where the acceleration comes from: one total-acceleration sensor, or user + gravity.
ACC_SOURCES = ("totalacceleration", "accelerometer+gravity", "accelerometer")
DEFAULT_ACC_SOURCE = "totalacceleration"
GYRO_SENSOR = "gyroscope"
#: Largest time step between a sample and the companion reading paired with it (seconds).
DEFAULT_PAIR_TOLERANCE_S = 0.05
_NS = 1e-9
_AXES = ("x", "y", "z")


class BodyError(ValueError):
    """A body that holds no usable samples as a whole (one-line reason, sent back as 400)."""


@dataclass(frozen=True)
class DecodeOptions:
    """How Sensor Logger readings become samples.

    `acc` names the acceleration source (`ACC_SOURCES`); `pair_tolerance_s` bounds how far in
    time a gyroscope (or gravity) reading may lie from an acceleration sample it is paired with
    (between two readings it is interpolated linearly, past the ends the nearest one is used).
    """

    acc: str = DEFAULT_ACC_SOURCE
    pair_tolerance_s: float = DEFAULT_PAIR_TOLERANCE_S

    def __post_init__(self) -> None:
        if self.acc not in ACC_SOURCES:
            raise ValueError(f"acc must be one of {list(ACC_SOURCES)}, got {self.acc!r}")
        if not self.pair_tolerance_s >= 0:
            raise ValueError("pair_tolerance_s must be >= 0")

    @property
    def sensors(self) -> Tuple[str, ...]:
        """Sensor names this decoding reads (others are counted as ignored)."""
        return tuple(self.acc.split("+")) + (GYRO_SENSOR,)


@dataclass
class Decoded:
    """One body's lines plus what happened to each of its entries.

    entries == samples + unpaired + companions + ignored + bad_entries, where `samples` are
    the acceleration readings that became lines, `unpaired` those dropped for want of a gravity
    reading (acc="accelerometer+gravity"), `companions` the gyroscope/gravity readings merged
    into them, `ignored` readings of other sensors and `bad_entries` malformed readings.
    """

    device: str
    lines: List[bytes] = field(default_factory=list)
    entries: int = 0
    companions: int = 0
    unpaired: int = 0
    ignored: int = 0
    bad_entries: int = 0
    last_error: Optional[str] = None

    def summary(self) -> Dict[str, object]:
        """The counts, as sent back to the client."""
        out: Dict[str, object] = {"device": self.device, "samples": len(self.lines),
                                  "entries": self.entries, "companions": self.companions,
                                  "unpaired": self.unpaired, "ignored": self.ignored,
                                  "bad_entries": self.bad_entries}
        if self.last_error:
            out["last_error"] = self.last_error
        return out


@dataclass
class BodyCounters(SourceCounters):
    """Transport counts plus the `Decoded` counts of every body a source passed on, and the
    newest reason a body or reading was refused (`last_rejected`)."""

    entries: int = 0
    companions: int = 0
    unpaired: int = 0
    ignored: int = 0
    bad_entries: int = 0
    last_rejected: str = ""

    def add(self, decoded: Decoded) -> None:
        """Count a body whose lines were passed on."""
        for name in ("entries", "companions", "unpaired", "ignored", "bad_entries"):
            setattr(self, name, getattr(self, name) + getattr(decoded, name))
        self.lines += len(decoded.lines)
        if decoded.last_error:
            self.last_rejected = decoded.last_error

    def to_dict(self) -> Dict[str, Any]:  # type: ignore[override]
        out: Dict[str, Any] = super().to_dict()
        if not out["last_rejected"]:
            del out["last_rejected"]
        return out


def is_body(obj: object) -> bool:
    """Whether a parsed JSON value is a sample body (rather than one daemon JSON line)."""
    return isinstance(obj, dict) and ("payload" in obj or "samples" in obj)


def parse_json(data: bytes) -> object:
    """`data` as JSON; raises `BodyError` with the reason."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, the 4300-digit int limit
        raise BodyError("body is not valid JSON") from None


def decode_body(obj: object, options: DecodeOptions = DecodeOptions(),
                default_device: Optional[str] = None) -> Decoded:
    """The sample lines of a parsed body (Sensor Logger or plain); raises `BodyError` when the
    body as a whole is unusable. `default_device` serves bodies that name no device."""
    if not isinstance(obj, dict):
        raise BodyError("body must be a JSON object")
    if "payload" in obj:
        device = _device(obj.get("deviceId"), "deviceId", default_device)
        return _decode_sensor_logger(obj["payload"], device, options)
    if "samples" in obj:
        device = _device(obj.get("device"), "device", default_device)
        return _decode_plain(obj["samples"], device)
    raise BodyError("body needs 'payload' (Sensor Logger) or 'samples' (plain body)")


def _device(value: object, key: str, default: Optional[str]) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not DEVICE_ID.fullmatch(value):
        raise BodyError(f"{key} must be 1-64 characters of [A-Za-z0-9_.:@/-]")
    return value


def _number(value: object) -> float:
    """A JSON number as float; raises ValueError for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{str(value)[:20]!r} is not a number")
    return float(value)  # OverflowError (a ValueError's cousin) is caught by the caller


def _line(device: str, row) -> bytes:
    return (device + "," + ",".join(map(repr, row))).encode() + b"\n"


def _decode_plain(samples: object, device: str) -> Decoded:
    if not isinstance(samples, list):
        raise BodyError("'samples' must be a list of [t, ax, ay, az(, gx, gy, gz)] rows")
    out = Decoded(device, entries=len(samples))
    for row in samples:
        try:
            if not isinstance(row, list) or len(row) not in (4, 7):
                raise ValueError("a sample must be [t, ax, ay, az] or [t, ax, ay, az, gx, gy, gz]")
            out.lines.append(_line(device, [_number(v) for v in row]))
        except (ValueError, OverflowError) as exc:
            out.bad_entries += 1
            out.last_error = str(exc)
    return out


Readings = Dict[str, Tuple[List[float], List[Tuple[float, float, float]]]]


def _decode_sensor_logger(payload: object, device: str, options: DecodeOptions) -> Decoded:
    if not isinstance(payload, list):
        raise BodyError("'payload' must be a list of readings")
    out = Decoded(device, entries=len(payload))
    wanted = options.sensors
    readings: Readings = {name: ([], []) for name in wanted}
    for entry in payload:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.lower() not in wanted:
            out.ignored += 1
            continue
        try:
            t, xyz = _reading(entry)
        except (ValueError, OverflowError) as exc:
            out.bad_entries += 1
            out.last_error = str(exc)
            continue
        times, values = readings[name.lower()]  # type: ignore[union-attr]
        times.append(t)
        values.append(xyz)
    _merge(readings, options, out)
    return out


def _reading(entry: object) -> Tuple[float, Tuple[float, float, float]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError("a reading must be an object with a 'name'")
    if "time" not in entry or not isinstance(entry.get("values"), dict):
        raise ValueError(f"reading {entry['name'][:20]!r} needs 'time' and 'values'")
    values = entry["values"]
    if not all(axis in values for axis in _AXES):
        raise ValueError(f"reading {entry['name'][:20]!r} needs values x, y and z")
    xyz = tuple(_number(values[axis]) for axis in _AXES)
    return _number(entry["time"]) * _NS, xyz  # type: ignore[return-value]


def _merge(readings: Readings, options: DecodeOptions, out: Decoded) -> None:
    """Acceleration samples (+ gravity, + gyroscope when there is one) as lines, in the order
    the acceleration readings came."""
    names = options.acc.split("+")
    t = np.asarray(readings[names[0]][0], dtype=np.float64)
    acc = np.asarray(readings[names[0]][1], dtype=np.float64).reshape(-1, 3)
    keep = np.ones(t.size, dtype=bool)
    if len(names) == 2:
        gravity, ok = _paired(t, *readings[names[1]], options.pair_tolerance_s)
        acc = acc + gravity
        keep &= ok
        out.companions += len(readings[names[1]][0])
        out.unpaired += int(np.count_nonzero(~ok))
    gyro_t, gyro_v = readings[GYRO_SENSOR]
    gyro, has_gyro = _paired(t, gyro_t, gyro_v, options.pair_tolerance_s)
    out.companions += len(gyro_t)
    rows = np.concatenate([t[:, None], acc, gyro], axis=1).tolist()
    for row, use, with_gyro in zip(rows, keep.tolist(), has_gyro.tolist()):
        if use:
            out.lines.append(_line(out.device, row if with_gyro else row[:4]))


def _paired(t: np.ndarray, times: List[float], values: List[Tuple[float, float, float]],
            tolerance: float) -> Tuple[np.ndarray, np.ndarray]:
    """Companion readings at the times `t`: (values (n, 3), whether each has one).

    A sample gets a companion value when a reading lies within `tolerance` of it; the value is
    interpolated linearly between the readings around it (past the ends: the nearest one).
    """
    none = np.zeros(t.size, dtype=bool)
    out = np.full((t.size, 3), math.nan)
    ct = np.asarray(times, dtype=np.float64).reshape(-1)
    cv = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(ct)
    order = np.argsort(ct[finite], kind="stable")
    ct, cv = ct[finite][order], cv[finite][order]
    if not ct.size or not t.size:
        return out, none
    at = np.clip(np.searchsorted(ct, t), 1, max(ct.size - 1, 1))
    with np.errstate(invalid="ignore"):
        nearest = np.minimum(np.abs(t - ct[at - 1]), np.abs(ct[np.minimum(at, ct.size - 1)] - t))
        ok = nearest <= tolerance  # NaN times are never paired
    for axis in range(3):
        out[:, axis] = np.interp(t, ct, cv[:, axis])
    out[~ok] = math.nan
    return out, ok
