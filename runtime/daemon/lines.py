"""The daemon's wire format: bounded line splitting and parsing of one sample per line.

Two line formats are accepted, told apart by their first character (docs/RUNTIME.md):

CSV   ``t,ax,ay,az`` or ``t,ax,ay,az,gx,gy,gz``; with a leading device id
      ``device,t,ax,ay,az`` or ``device,t,ax,ay,az,gx,gy,gz`` (the field count decides: 5 or 8
      fields mean the first is the device id).
JSON  ``{"t": 12.34, "acc": [ax, ay, az], "gyro": [gx, gy, gz], "device": "id"}`` with
      "gyro" and "device" optional.

Blank lines, ``#`` comments and CSV header lines (first field ``t``, ``timestamp`` or
``device``) are skipped. A device id is 1-64 characters of ``A-Z a-z 0-9 _ . : @ / -``.

`LineParser.parse_block` turns a whole block of clean CSV lines into arrays at once (the
daemon's fast path); it declines any block it cannot parse exactly as `parse` would, line by line.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.spec import ALL_CHANNELS

#: Longest accepted line in bytes unless configured (a 6-channel CSV sample is ~150).
DEFAULT_MAX_LINE = 4096
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:@/\-]{1,64}")
_HEADER_FIELDS = ("t", "timestamp", "device")
_CSV_FIELD_COUNTS = (4, 5, 7, 8)
_NEWLINE, _COMMA, _SPACE, _NON_ASCII = 10, 44, 32, 128
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


@dataclass(frozen=True)
class SampleBlock:
    """The samples of a block of clean CSV lines as arrays, in line order.

    `devices` holds the distinct device ids and `device_index` (n,) each line's index into it;
    both are None when the lines carry no device id. `values` (n, C) follow the model's order.
    """

    devices: Optional[Tuple[str, ...]]
    device_index: Optional[np.ndarray]
    t: np.ndarray
    values: np.ndarray


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
        pieces = bytes(data).split(b"\n")
        rest = pieces.pop()
        lines: List[bytes] = []
        if pieces:
            # Only the first piece continues held bytes; the others start with an empty buffer.
            self._end_line(pieces[0], lines)
            body = pieces[1:]
            if max(map(len, body), default=0) <= self.max_line:
                lines.extend(body)
            else:
                for piece in body:
                    self._end_line(piece, lines)
        self._hold(rest)
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

    def parse_block(self, lines: Sequence[bytes]) -> Optional[SampleBlock]:
        """All of `lines` as one `SampleBlock` when every line is a clean CSV sample of one
        layout (no blank, comment, header, JSON or whitespace); None otherwise, and then `parse`
        on each line decides, so what counts as malformed never depends on this fast path."""
        k = _uniform_field_count(lines)
        if k is None or (self._needs_gyro and k < 7):
            return None
        n = len(lines)
        joined = b",".join(lines)
        fields = np.array(joined.split(b","), dtype="S").reshape(n, k)
        has_device = k in (5, 8)
        try:  # bytes -> float64 goes through Python's float(): same values, same rejections
            numbers = fields[:, int(has_device):].astype(np.float64)
        except ValueError:
            return None
        devices, index = None, None
        if has_device:
            unique, index = np.unique(fields[:, 0], return_inverse=True)
            devices = tuple(u.decode("ascii") for u in unique)
            if not all(DEVICE_ID.fullmatch(d) and d.lower() not in _HEADER_FIELDS
                       for d in devices):
                return None
        both = numbers[:, 1:]
        if k < 7:
            both = np.concatenate([both, np.full((n, 3), np.nan)], axis=1)
        return SampleBlock(devices, index, numbers[:, 0].copy(), both[:, self._index])


def _uniform_field_count(lines: Sequence[bytes]) -> Optional[int]:
    """The CSV field count shared by every line, or None when the lines differ, a count is not
    valid, or any line holds whitespace, control or non-ASCII bytes (stripping would matter)."""
    n = len(lines)
    if n == 0:
        return None
    arr = np.frombuffer(b"\n".join(lines), dtype=np.uint8)
    seps = np.flatnonzero((arr == _COMMA) | (arr <= _SPACE) | (arr >= _NON_ASCII))
    k = (seps.size + 1) // n
    if seps.size + 1 != n * k or k not in _CSV_FIELD_COUNTS:
        return None
    kinds = np.append(arr[seps], _NEWLINE).reshape(n, k)
    if not ((kinds[:, :-1] == _COMMA).all() and (kinds[:, -1] == _NEWLINE).all()):
        return None
    return k


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
    except (ValueError, RecursionError):  # ValueError: JSONDecodeError, 4300-digit int limit
        raise LineError(f"JSON line {_quote(text)} does not parse") from None
    if not isinstance(obj, dict):
        raise LineError("JSON line must be an object")
    if "t" not in obj or "acc" not in obj:
        raise LineError("JSON line needs fields 't' and 'acc'")
    device = _check_device(obj["device"]) if obj.get("device") is not None else None
    gyro = _triple(obj["gyro"], "gyro") if obj.get("gyro") is not None else None
    return device, _number(obj["t"], "'t'"), _triple(obj["acc"], "acc"), gyro
