"""The daemon's wire format: bounded line splitting and parsing of one sample per line.

Two line formats are accepted, told apart by their first character (docs/RUNTIME.md):

CSV   ``t,ax,ay,az`` or ``t,ax,ay,az,gx,gy,gz``; with a leading device id
      ``device,t,ax,ay,az`` or ``device,t,ax,ay,az,gx,gy,gz`` (the field count decides: 5 or 8
      fields mean the first is the device id).
JSON  ``{"t": 12.34, "acc": [ax, ay, az], "gyro": [gx, gy, gz], "device": "id"}`` with
      "gyro" and "device" optional.

Blank lines, ``#`` comments and CSV header lines (first field ``t``, ``timestamp`` or
``device``) are skipped. A device id is 1-64 characters of ``A-Z a-z 0-9 _ . : @ / -``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from har_runtime.spec import ALL_CHANNELS

#: Longest accepted line in bytes unless configured (a 6-channel CSV sample is ~150).
DEFAULT_MAX_LINE = 4096
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:@/\-]{1,64}")
_HEADER_FIELDS = ("t", "timestamp", "device")
#: Characters of an offending line quoted in error messages.
_QUOTE = 40


class LineError(ValueError):
    """A line that is not a valid sample; the message says why in one line."""


@dataclass(frozen=True)
class Sample:
    """One parsed sample: `values` follow the model's channel order; `device` None = unnamed."""

    device: Optional[str]
    t: float
    values: Tuple[float, ...]


class LineSplitter:
    """Split a byte stream into lines of at most `max_line` bytes (newline excluded).

    A longer line is dropped whole and counted in `overlong`; memory stays bounded by
    `max_line` whatever the peer sends, and the next line is read normally.
    """

    def __init__(self, max_line: int):
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.max_line = max_line
        self.overlong = 0
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> List[bytes]:
        """Add bytes; return the complete lines they finish."""
        lines: List[bytes] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            self._end_line(data[start:nl], lines)
            start = nl + 1
        self._hold(data[start:])
        return lines

    def finish(self) -> List[bytes]:
        """End of stream: the unterminated last line, if any, counts as a line."""
        lines: List[bytes] = []
        if self._buf and not self._skipping:
            lines.append(bytes(self._buf))
        self._buf.clear()
        self._skipping = False
        return lines

    def _end_line(self, piece: bytes, lines: List[bytes]) -> None:
        if self._skipping:
            self._skipping = False
        elif len(self._buf) + len(piece) > self.max_line:
            self.overlong += 1
        else:
            lines.append(bytes(self._buf) + piece)
        self._buf.clear()

    def _hold(self, rest: bytes) -> None:
        if self._skipping or not rest:
            return
        if len(self._buf) + len(rest) > self.max_line:
            self.overlong += 1
            self._skipping = True
            self._buf.clear()
        else:
            self._buf += rest


class LineParser:
    """Parse lines into `Sample`s carrying the values of `channels` (the model's order)."""

    def __init__(self, channels: Sequence[str]):
        self._index = [ALL_CHANNELS.index(c) for c in channels]
        self._needs_gyro = any(i >= 3 for i in self._index)

    def parse(self, line: bytes) -> Optional[Sample]:
        """A `Sample`, or None for a blank, comment or header line; raises `LineError`."""
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise LineError("line is not UTF-8 text") from None
        if not text or text.startswith("#"):
            return None
        if text.startswith("{"):
            device, t, acc, gyro = _parse_json(text)
        else:
            fields = [f.strip() for f in text.split(",")]
            if fields[0].lower() in _HEADER_FIELDS:
                return None
            device, t, acc, gyro = _parse_csv(fields, text)
        if self._needs_gyro and gyro is None:
            raise LineError("the model needs gyroscope values and this line has none")
        both = acc + (gyro if gyro is not None else (math.nan,) * 3)
        return Sample(device, t, tuple(both[i] for i in self._index))


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTE else text[:_QUOTE] + "…")


def _check_device(device) -> str:
    if not isinstance(device, str) or not DEVICE_ID.fullmatch(device):
        raise LineError(f"device id {_quote(str(device))} is not 1-64 of [A-Za-z0-9_.:@/-]")
    return device


def _parse_csv(fields: List[str], text: str):
    device = None
    if len(fields) in (5, 8):
        device, fields = _check_device(fields[0]), fields[1:]
    elif len(fields) not in (4, 7):
        raise LineError(f"CSV line {_quote(text)} has {len(fields)} fields; expected "
                        "t,ax,ay,az[,gx,gy,gz] with an optional leading device id")
    try:
        numbers = tuple(float(f) for f in fields)
    except ValueError:
        raise LineError(f"CSV line {_quote(text)} has a field that is not a number") from None
    return device, numbers[0], numbers[1:4], (numbers[4:7] if len(numbers) == 7 else None)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LineError(f"JSON field {what} must be a number, got {_quote(repr(value))}")
    try:
        return float(value)
    except OverflowError:
        raise LineError(f"JSON field {what} is too large for a float") from None


def _triple(value, what: str) -> Tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise LineError(f"JSON field {what!r} must be a list of 3 numbers")
    return tuple(_number(v, what) for v in value)  # type: ignore[return-value]


def _parse_json(text: str):
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise LineError(f"JSON line {_quote(text)} does not parse") from None
    if not isinstance(obj, dict):
        raise LineError("JSON line must be an object")
    if "t" not in obj or "acc" not in obj:
        raise LineError("JSON line needs fields 't' and 'acc'")
    device = _check_device(obj["device"]) if obj.get("device") is not None else None
    gyro = _triple(obj["gyro"], "gyro") if obj.get("gyro") is not None else None
    return device, _number(obj["t"], "'t'"), _triple(obj["acc"], "acc"), gyro
