"""The daemon's wire format: bounded line splitting and parsing of one sample per line.

Two line formats are accepted, told apart by their first character (docs/RUNTIME.md):

CSV   ``t,ax,ay,az`` or ``t,ax,ay,az,gx,gy,gz``; with a leading device id
      ``device,t,ax,ay,az`` or ``device,t,ax,ay,az,gx,gy,gz`` (the field count decides: 5 or 8
      fields mean the first is the device id).
JSON  ``{"t": 12.34, "acc": [ax, ay, az], "gyro": [gx, gy, gz], "device": "id"}`` with
      "gyro" and "device" optional.

Blank lines, ``#`` comments and CSV header lines (first field ``t``, ``timestamp`` or
``device``) are skipped. A device id is 1-64 characters of ``A-Z a-z 0-9 _ . : @ / -``.
A CSV number is an ASCII decimal with an optional exponent, or ``nan`` / ``inf`` / ``infinity``
(any case, optional sign); float() would also take underscores and non-ASCII digits.

`LineParser.parse_block` turns a whole block of clean CSV lines into arrays at once (the
daemon's fast path); it declines any block it cannot parse exactly as `parse` would, line by line.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from itertools import groupby
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.spec import ALL_CHANNELS

#: Longest accepted line in bytes unless configured (a 6-channel CSV sample is ~150).
DEFAULT_MAX_LINE = 4096
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:@/\-]{1,64}")
_HEADER_FIELDS = ("t", "timestamp", "device")
_CSV_FIELD_COUNTS = (4, 5, 7, 8)
_NEWLINE, _COMMA, _SPACE, _NON_ASCII, _DOT, _MINUS, _PLUS = 10, 44, 32, 128, 46, 45, 43
#: Longest plain decimal the fast path reads: its digits then stay below 10**15 < 2**53.
_DECIMAL_CHARS = 15
_POWERS_OF_TEN = 10.0 ** np.arange(_DECIMAL_CHARS)
#: Characters of an offending line quoted in error messages.
_QUOTE = 40
#: The CSV number syntax (module docstring). Each digit run can match only one way, so a
#: failing match costs linear time, however long the block.
_NUMBER = r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))"
_NUMBER_FIELD = re.compile(_NUMBER, re.ASCII)  # without it, (?i) matches "ınf" too
_NUMBER_LIST = re.compile(f"{_NUMBER}(?:,{_NUMBER})*".encode())


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

    def discard(self) -> bool:
        """End of a stream that may have been cut off: drop the unterminated last line.
        Returns whether there was one (bytes of a line already dropped as overlong do not
        count)."""
        dropped = bool(self._buf) and not self._skipping
        self._buf.clear()
        self._skipping = False
        return dropped

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
        devices, index = None, None
        if k in (5, 8):
            parts = [line.partition(b",") for line in lines]
            devices, index = _device_index([p[0] for p in parts])
            if devices is None:
                return None
            text = b",".join([p[2] for p in parts])
            k -= 1
        else:
            text = b",".join(lines)
        numbers = _numbers(text, n * k)
        if numbers is None:
            return None
        numbers = numbers.reshape(n, k)
        values = numbers[:, 1:]  # acc, then gyro when sent (a gyro model only takes such lines)
        if self._index != list(range(values.shape[1])):
            values = values[:, self._index]
        return SampleBlock(devices, index, numbers[:, 0], values)


def _device_index(ids: List[bytes]) -> Tuple[Optional[Tuple[str, ...]], Optional[np.ndarray]]:
    """(distinct device ids in order of appearance, each line's index into them), or
    (None, None) when one of them is not a valid device id (or is a header's first field)."""
    first_seen: Dict[bytes, int] = {}
    keys: List[int] = []
    runs: List[int] = []
    for device, run in groupby(ids):  # a device's lines mostly come in a row (a packet)
        keys.append(first_seen.setdefault(device, len(first_seen)))
        runs.append(len(list(run)))
    devices = tuple(d.decode("ascii") for d in first_seen)
    if not all(DEVICE_ID.fullmatch(d) and d.lower() not in _HEADER_FIELDS for d in devices):
        return None, None
    return devices, np.repeat(np.array(keys, dtype=np.intp), runs)


def _numbers(text: bytes, count: int) -> Optional[np.ndarray]:
    """The `count` comma-separated numbers of `text` as float64, each exactly what Python's
    float() makes of it; None when a field is not a number of the CSV syntax."""
    numbers = _decimals(text, count)
    if numbers is not None:
        return numbers
    if not _NUMBER_LIST.fullmatch(text):
        return None
    # Exponents, nan/inf: bytes -> float64 goes through Python's float().
    return np.array(text.split(b","), dtype="S").astype(np.float64)


def _decimals(text: bytes, count: int) -> Optional[np.ndarray]:
    """Fast path of `_numbers` for plain decimals ([+-]digits[.digits], at most _DECIMAL_CHARS
    characters); None when any field is something else.

    Such a field is the integer m of its digits over 10**f (f digits after the point). m and
    10**f are exact doubles, so the one correctly rounded division m / 10**f is the correctly
    rounded value of the decimal, which is what float() returns. The integers are parsed in C
    (np.fromstring), about ten times faster than float() per field.
    """
    chars = np.frombuffer(text, dtype=np.uint8)
    layout = _layout(chars, count)
    mantissa = None if layout is None else _integers(text.replace(b".", b""), count)
    if mantissa is None:
        return None
    starts, ends, points, dotted = layout
    # "+" (43) and "-" (45), and the "/" and ")" no number holds, are the bytes b with b | 6 == 47.
    signs = np.bitwise_or(chars, 6) == 47
    if np.count_nonzero(signs) != np.count_nonzero(signs[starts]):
        return None  # a sign inside a field (".-5" would lose its point and parse as -5)
    first = chars[starts]
    signed = (first == _MINUS) | (first == _PLUS)
    digits_after = np.zeros(count, dtype=np.intp)
    digits_after[dotted] = 1
    # Characters that are neither sign nor point are digits (the integer parse saw to that);
    # a field with none ("-", "+.") would have parsed as 0.
    if np.minimum.reduce(ends - starts - signed - digits_after) < 1:
        return None
    digits_after[dotted] = ends[dotted] - points - 1
    values = mantissa / _POWERS_OF_TEN[digits_after]
    # "-0.0" parses as the integer 0: the sign comes from the text, as float() takes it.
    return np.copysign(values, np.where(first == _MINUS, -1.0, 1.0))


def _layout(chars: np.ndarray, count: int):
    """(starts, ends) of the `count` comma-separated fields of `chars`, and the position of each
    decimal point with the index of its field; None when a field is too long or has two points."""
    marks = np.flatnonzero(np.bitwise_or(chars, 2) == _DOT)  # "," (44) and "." (46)
    is_point = chars[marks] == _DOT
    commas = marks[~is_point]
    if commas.size != count - 1:
        return None
    starts = np.concatenate(([0], commas + 1))
    ends = np.append(commas, chars.size)
    if np.maximum.reduce(ends - starts) > _DECIMAL_CHARS:
        return None
    at = np.flatnonzero(is_point)
    dotted = at - np.arange(at.size)  # commas before a point = the index of its field
    if at.size > 1 and np.minimum.reduce(np.diff(dotted)) == 0:
        return None
    return starts, ends, marks[at], dotted


def _integers(text: bytes, count: int) -> Optional[np.ndarray]:
    """The `count` comma-separated integers of `text` (int64), or None when that is not all
    `text` holds."""
    with warnings.catch_warnings():
        # A field that is no integer ends the parse early (with this warning): counted below.
        # The extra ",0" makes that true of the last field too (the parse ignores what follows
        # its last number).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            numbers = np.fromstring(text + b",0", dtype=np.int64, sep=",")
        except ValueError:
            return None
    return numbers[:count] if numbers.size == count + 1 else None


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
    if not all(_NUMBER_FIELD.fullmatch(f) for f in fields):
        raise LineError(f"CSV line {_quote(text)} has a field that is not a number")
    numbers = tuple(float(f) for f in fields)
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
