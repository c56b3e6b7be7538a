"""Settings of `har-runtime serve`, read from a TOML file (`--config`, docs/RUNTIME.md).

Each key is one field of `ServeSettings`: its default, the click type that checks a value (the
same one the command-line flag uses, where there is a flag) and one line of help. Defaults come
first, the file replaces them, flags given on the command line replace both.
"""
from __future__ import annotations

import difflib
import math
import reprlib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import click

from har_runtime.contract.units import ACC_UNITS, GYRO_UNITS
from har_runtime.daemon.engine import DEVICE_POLICIES, EMIT_CHOICES, EngineSettings
from har_runtime.daemon.lines import DEFAULT_MAX_LINE
from har_runtime.daemon.model import SmoothingOverrides
from har_runtime.daemon.checks import TIME_UNITS
from har_runtime.daemon.sources import TcpOptions
from har_runtime.interpreter import INTERPRETERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, published as tomli before it joined the standard library
    import tomli as tomllib

_ENGINE = EngineSettings()
_TCP = TcpOptions()
DEFAULT_STATS_INTERVAL = 60.0


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file and the key."""


def _key(default: Any, kind: click.ParamType, doc: str) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc})


@dataclass(frozen=True)
class ServeSettings:
    """Everything `serve` needs besides the bundle; one field per settings-file key."""

    source: str = _key("stdin", click.STRING,
                       "stdin | file:PATH | tcp:[HOST:]PORT | udp:[HOST:]PORT | "
                       "serial:DEVICE[@BAUD] | http:[HOST:]PORT[?OPTS] (Sensor Logger push) | "
                       "mqtt[s]://[USER:PASS@]HOST[:PORT]/TOPIC[?OPTS]. Network sources bind "
                       "127.0.0.1 unless HOST is given (docs/RUNTIME.md).")
    sink: str = _key("stdout", click.STRING,
                     "stdout | file:PATH (append) | mqtt[s]://HOST[:PORT]/BASE[?OPTS] (events, "
                     "Home Assistant discovery).")
    variant: Optional[str] = _key(None, click.STRING,
                                  "Model variant (default: the bundle's recommended one).")
    interpreter: Optional[str] = _key(None, click.Choice(INTERPRETERS),
                                      "TFLite interpreter package (default: first importable).")
    threads: int = _key(1, click.IntRange(1, 64), "Interpreter threads.")
    emit: str = _key(_ENGINE.emit, click.Choice(EMIT_CHOICES),
                     "Write every window's prediction, or only activity changes.")
    acc_unit: str = _key(_ENGINE.acc_unit, click.Choice(sorted(ACC_UNITS)),
                         "Unit of the incoming accelerometer values.")
    gyro_unit: str = _key(_ENGINE.gyro_unit, click.Choice(sorted(GYRO_UNITS)),
                          "Unit of the incoming gyroscope values.")
    smoothing_k: Optional[int] = _key(None, click.IntRange(1),
                                      "Windows averaged by the smoother (default: the bundle's).")
    min_confidence: Optional[float] = _key(None, click.FloatRange(0.0, 1.0),
                                           "Below this smoothed probability the activity is "
                                           "'unknown' (default: the bundle's).")
    hysteresis: Optional[int] = _key(None, click.IntRange(1),
                                     "Windows a new activity must win before it is reported "
                                     "(default: the bundle's).")
    max_devices: int = _key(_ENGINE.max_devices, click.IntRange(1),
                            "Devices with live state at once.")
    device_policy: str = _key(_ENGINE.device_policy, click.Choice(DEVICE_POLICIES),
                              "At max_devices: drop the least recently heard device (evict), or "
                              "the new one's samples (refuse).")
    device_buffer: int = _key(_ENGINE.device_buffer, click.IntRange(1),
                              "Samples a device accumulates before they are classified.")
    max_line: int = _key(DEFAULT_MAX_LINE, click.IntRange(16, 1 << 20),
                         "Longest accepted line in bytes; longer lines are counted and skipped.")
    time_unit: str = _key(_ENGINE.time_unit, click.Choice(list(TIME_UNITS)),
                          "Unit of the incoming timestamps (phones send Unix milliseconds: ms).")
    max_connections: int = _key(_TCP.max_connections, click.IntRange(1, 1024),
                                "Concurrent TCP connections.")
    max_per_address: int = _key(_TCP.max_per_address, click.IntRange(1, 1024),
                                "Concurrent TCP connections from one peer address.")
    idle_timeout_s: float = _key(_TCP.idle_timeout_s, click.FloatRange(min=0.0),
                                 "Seconds a silent TCP connection is kept (0: forever).")
    stats_interval: float = _key(DEFAULT_STATS_INTERVAL, click.FloatRange(min=0.0),
                                 "Seconds between counter lines on stderr (0: only at exit).")

    def engine(self) -> EngineSettings:
        """The engine's share of the settings (the fields EngineSettings names)."""
        return EngineSettings(**{f.name: getattr(self, f.name) for f in fields(EngineSettings)})

    def tcp(self) -> TcpOptions:
        """The TCP source's share of the settings."""
        return TcpOptions(self.max_connections, self.max_per_address, self.idle_timeout_s)

    def smoothing(self) -> SmoothingOverrides:
        """Replacements for the bundle's smoothing defaults (None keeps the bundle's)."""
        return SmoothingOverrides(self.smoothing_k, self.min_confidence, self.hysteresis)


KEYS: Mapping[str, Any] = {f.name: f for f in fields(ServeSettings)}


def load_settings(path: Optional[Path]) -> ServeSettings:
    """The settings in TOML file `path` (the defaults if None); SettingsError if unusable."""
    if path is None:
        return ServeSettings()
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file ({exc.strerror or exc})"
                            ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not a TOML file: {exc}") from None
    return settings_from(values, str(path))


def settings_from(values: Mapping[str, Any], where: str) -> ServeSettings:
    """ServeSettings from parsed TOML `values`; `where` starts each error message."""
    checked: Dict[str, Any] = {}
    for key, value in values.items():
        if key not in KEYS:
            raise SettingsError(f"{where}: unknown key {key!r}{_suggestion(key)}")
        checked[key] = _check(key, value, KEYS[key].metadata["kind"], where)
    return ServeSettings(**checked)


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, list(KEYS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(KEYS)}"


def _python_types(kind: click.ParamType) -> Tuple[type, ...]:
    if isinstance(kind, click.types.IntParamType):
        return (int,)
    if isinstance(kind, click.types.FloatParamType):
        return (int, float)
    return (str,)


def _check(key: str, value: Any, kind: click.ParamType, where: str) -> Any:
    types = _python_types(kind)
    if isinstance(value, bool) or not isinstance(value, types):
        wanted = {int: "an integer", float: "a number", str: "a string"}[types[-1]]
        raise SettingsError(f"{where}: {key} must be {wanted}, got {reprlib.repr(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{where}: {key} must be finite, got {value!r}")
    try:
        return kind.convert(value, None, None)
    except click.BadParameter as exc:
        raise SettingsError(f"{where}: {key}: {exc.message}") from None
