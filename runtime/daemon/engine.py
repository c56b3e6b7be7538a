"""The daemon's core: lines in, one StreamClassifier per device, events out. No I/O here.

Accounting over the daemon's life (checked by the tests, listed in docs/RUNTIME.md):
  lines   == samples + malformed + skipped
  samples == samples_in + refused_samples + implausible   (handed to a device, refused, or
                                                            beyond any sensor's range)
plus every StreamClassifier identity summed over live and retired devices. A device is retired
when it is evicted, at a reload, and when the connection it is the default device of ends.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, fields, replace
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.results import Prediction
from har_runtime.daemon.checks import (TIME_UNITS, beyond_limits, implausible_rows,
                                       plausible_limits, time_unit_hint, timestamp_trouble)
from har_runtime.daemon.lines import LineError, LineParser, SampleBlock
from har_runtime.daemon.model import Model, ModelLoader, ModelLoadFailed
from har_runtime.daemon.sources import Received
from har_runtime.stream import Event, StagedWindows, StreamClassifier, StreamCounters, classify

DEVICE_POLICIES = ("evict", "refuse")
EMIT_CHOICES = ("all", "changes")
#: Most prediction latencies kept for the p50/p99 of one stats interval (the latest ones).
LATENCY_WINDOW = 2048
#: A device's push, resampled and windowed, waiting for its windows' probabilities.
Staged = Tuple[StreamClassifier, StagedWindows]


@dataclass(frozen=True)
class EngineSettings:
    """Limits and input conventions of the daemon.

    `max_devices` bounds the per-device state; when a new device arrives at the bound, "evict"
    drops the least recently heard device and "refuse" drops the newcomer's samples.
    `device_buffer` is the most samples a device accumulates before they are classified.
    `time_unit` is the unit of the senders' timestamps (a key of `checks.TIME_UNITS`).
    """

    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    max_devices: int = 64
    device_policy: str = "evict"
    device_buffer: int = 256
    emit: str = "all"
    time_unit: str = "s"

    def __post_init__(self) -> None:
        if self.max_devices < 1 or self.device_buffer < 1:
            raise ValueError("max_devices and device_buffer must be >= 1")
        if self.device_policy not in DEVICE_POLICIES:
            raise ValueError(f"device_policy must be one of {list(DEVICE_POLICIES)}")
        if self.emit not in EMIT_CHOICES:
            raise ValueError(f"emit must be one of {list(EMIT_CHOICES)}")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {list(TIME_UNITS)}")


@dataclass
class EngineCounters:
    """Cumulative line- and device-level counts."""

    lines: int = 0
    samples: int = 0
    malformed: int = 0
    skipped: int = 0
    refused_samples: int = 0
    #: Samples with a value beyond `checks.PLAUSIBLE_LIMITS`, skipped before any device.
    implausible: int = 0
    devices_seen: int = 0
    evicted: int = 0
    #: Connection default devices retired because their connection ended.
    ended_devices: int = 0
    changes: int = 0
    reloads: int = 0
    reload_failures: int = 0

    def to_dict(self) -> Dict[str, int]:
        """Plain dict of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Engine:
    """Route parsed samples to per-device stream classifiers and collect their events."""

    def __init__(self, loader: ModelLoader, settings: EngineSettings = EngineSettings()):
        self.settings = settings
        self._loader = loader
        self._per_second = TIME_UNITS[settings.time_unit]
        self._serve(loader())
        self._devices: "OrderedDict[str, StreamClassifier]" = OrderedDict()
        self._retired = StreamCounters()
        #: (device, why) of devices retired with suspicious timestamps since the last interval.
        self._troubled: List[Tuple[str, str]] = []
        self._latencies: Deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.counters = EngineCounters()
        self.last_malformed: Optional[str] = None

    # -- data path ----------------------------------------------------------------------------
    def feed(self, rx: Received) -> List[Event]:
        """Parse and classify one batch of lines; return the events to emit, in order.

        A batch of clean CSV lines takes the array path; any other batch goes line by line.
        Both make the same pushes in the same order, classify the windows of all of them in
        one interpreter call (`_finish`), and so give the same events and counters.
        """
        events = self._feed_batch(rx)
        if rx.closed:
            self._end(rx.origin)
        return events

    def _feed_batch(self, rx: Received) -> List[Event]:
        block = self._parser.parse_block(rx.lines)
        if block is None:
            return self._feed_lines(rx)
        n = block.t.size
        self.counters.lines += n
        self.counters.samples += n
        block = self._admit(block)
        times, values, plan = _push_plan(block, rx.origin, self.settings.device_buffer)
        events: List[Event] = []
        staged: List[Staged] = []
        for device, a, b in plan:
            events.extend(self._stage(device, times[a:b], values[a:b], rx.arrival, staged,
                                      arrays=True))
        events.extend(self._finish(staged))
        return events

    def _feed_lines(self, rx: Received) -> List[Event]:
        pending: Dict[str, Tuple[List[float], List[Tuple[float, ...]]]] = {}
        events: List[Event] = []
        staged: List[Staged] = []
        for line in rx.lines:
            self.counters.lines += 1
            try:
                sample = self._parser.parse(line)
            except LineError as exc:
                self.counters.malformed += 1
                self.last_malformed = str(exc)
                continue
            if sample is None:
                self.counters.skipped += 1
                continue
            self.counters.samples += 1
            if beyond_limits(sample.values, self._limit_list):
                self.counters.implausible += 1
                continue
            device = sample.device or rx.origin
            times, values = pending.setdefault(device, ([], []))
            times.append(sample.t / self._per_second)  # as `_admit` divides a block's times
            values.append(sample.values)
            if len(times) >= self.settings.device_buffer:
                del pending[device]
                events.extend(self._stage(device, times, values, rx.arrival, staged))
        for device, (times, values) in pending.items():
            events.extend(self._stage(device, times, values, rx.arrival, staged))
        events.extend(self._finish(staged))
        return events

    def _admit(self, block: SampleBlock) -> SampleBlock:
        """The block without its implausible samples (counted), timestamps in seconds; what
        the line path does sample by sample (a division rounds once, so both agree exactly)."""
        bad = implausible_rows(block.values, self._limits)
        if bad is not None:
            self.counters.implausible += int(np.count_nonzero(bad))
            keep = ~bad
            index = None if block.device_index is None else block.device_index[keep]
            block = SampleBlock(block.devices, index, block.t[keep], block.values[keep])
        if self._per_second != 1.0:
            block = replace(block, t=block.t / self._per_second)
        return block

    def _stage(self, device: str, times, values, arrival: float, staged: List[Staged],
               arrays: bool = False) -> List[Event]:
        """Stage one push of `device` onto `staged`; return the events of the pushes that had to
        be finished first (those staged before a push that evicts a device). `arrays`: times
        and values are a block's float64 arrays, which `StreamClassifier.stage_arrays` takes
        as they are."""
        out = self._finish(staged) if self._evicts(device) else []
        stream = self._stream_for(device)
        if stream is None:
            self.counters.refused_samples += len(times)
        elif arrays:
            staged.append((stream, stream.stage_arrays(times, values, arrival)))
        else:
            staged.append((stream, stream.stage(np.asarray(times), np.asarray(values), arrival)))
        return out

    def _evicts(self, device: str) -> bool:
        """Whether a push for `device` now would evict another device."""
        return (device not in self._devices and len(self._devices) >= self.settings.max_devices
                and self.settings.device_policy == "evict")

    def _finish(self, staged: List[Staged]) -> List[Event]:
        """Classify the windows of the `staged` pushes in one call, then smooth them in order."""
        parts = [s.windows for _, s in staged if s.t_end]
        probs = None
        if parts:
            windows = parts[0] if len(parts) == 1 else np.concatenate(parts)
            probs = classify(self.model.classifier, windows, self.model.spec.num_classes)
        out: List[Event] = []
        done = 0
        for stream, s in staged:
            k = len(s.t_end)
            if k or s.resets:  # finishing a push with neither is a no-op
                out.extend(self._emit(stream.finish(s, probs[done:done + k] if k else None)))
                done += k
        staged.clear()
        return out

    def _emit(self, events: List[Event]) -> List[Event]:
        """The events to pass on (all, or only changes), recording prediction latencies."""
        out: List[Event] = []
        for e in events:
            if isinstance(e, Prediction):
                self._latencies.append(e.latency_s)
                if self.settings.emit == "all":
                    out.append(e)
            else:
                self.counters.changes += 1
                out.append(e)
        return out

    def _stream_for(self, device: str) -> Optional[StreamClassifier]:
        stream = self._devices.get(device)
        if stream is not None:
            self._devices.move_to_end(device)
            return stream
        if len(self._devices) >= self.settings.max_devices:
            if self.settings.device_policy == "refuse":
                return None
            _, oldest = self._devices.popitem(last=False)
            self._retire(oldest)
            self.counters.evicted += 1
        m = self.model
        stream = StreamClassifier(m.spec, m.classifier, m.smoothing, self.settings.acc_unit,
                                  self.settings.gyro_unit, device=device)
        self._devices[device] = stream
        self.counters.devices_seen += 1
        return stream

    def _end(self, origin: str) -> None:
        """The connection `origin` ended: its default device can never hear from it again."""
        stream = self._devices.pop(origin, None)
        if stream is not None:
            self._retire(stream)
            self.counters.ended_devices += 1

    def _retire(self, stream: StreamClassifier) -> None:
        why = timestamp_trouble(stream.counters)
        if why:  # the hint must outlive a short connection
            self._troubled.append((stream.device, why))
        stream.reset()  # moves its buffered frames to `discarded`
        for name, value in stream.counters.to_dict().items():
            setattr(self._retired, name, getattr(self._retired, name) + value)

    # -- model swap ---------------------------------------------------------------------------
    def _serve(self, model: Model) -> None:
        """Serve `model`: its channels decide the line layout and the plausibility limits."""
        self.model = model
        self._parser = LineParser(model.spec.channels)
        self._limits = plausible_limits(model.spec.channels, self.settings.acc_unit,
                                        self.settings.gyro_unit)
        self._limit_list = self._limits.tolist()

    def reload(self) -> Tuple[bool, str]:
        """Load the model again; on failure keep serving the old one. Returns (ok, message).

        Device state is rebuilt after a successful reload because the new spec may differ.
        """
        try:
            model = self._loader()
        except ModelLoadFailed as exc:
            self.counters.reload_failures += 1
            return False, str(exc)
        for stream in self._devices.values():
            self._retire(stream)
        self._devices.clear()
        self._serve(model)
        self.counters.reloads += 1
        return True, model.description

    # -- reporting ----------------------------------------------------------------------------
    def stream_totals(self) -> StreamCounters:
        """StreamCounters summed over live and retired devices."""
        total = StreamCounters(**self._retired.to_dict())
        for stream in self._devices.values():
            for name, value in stream.counters.to_dict().items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def snapshot(self, per_device: bool = False, new_interval: bool = False) -> Dict[str, Any]:
        """All counters as one flat dict (plus `per_device` detail when asked).

        The latency percentiles cover the predictions since the last `new_interval` snapshot
        (at most the latest LATENCY_WINDOW, `latency_n` of them); `new_interval` starts the next.
        So does the hint: it names live devices and those retired within the interval.
        """
        out: Dict[str, Any] = {**self.counters.to_dict(), **self.stream_totals().to_dict(),
                               "devices": len(self._devices), "model": self.model.description,
                               "latency_n": len(self._latencies)}
        if self._latencies:
            lat = np.asarray(self._latencies)
            out["latency_p50_ms"] = round(float(np.percentile(lat, 50)) * 1e3, 3)
            out["latency_p99_ms"] = round(float(np.percentile(lat, 99)) * 1e3, 3)
        if self.last_malformed:
            out["last_malformed"] = self.last_malformed
        hint = self.hint()
        if hint:
            out["hint"] = hint
        if new_interval:
            self._latencies.clear()
            self._troubled.clear()
        if per_device:
            out["per_device"] = {d: s.counters.to_dict() for d, s in self._devices.items()}
        return out

    def hint(self) -> Optional[str]:
        """A hint when devices' timestamps look like the wrong `time_unit`, else None."""
        live = ((d, timestamp_trouble(s.counters)) for d, s in self._devices.items())
        troubled = self._troubled + [(d, why) for d, why in live if why]
        if not troubled:
            return None
        return time_unit_hint([d for d, _ in troubled], troubled[0][1], self.settings.time_unit)

    def device_ids(self) -> List[str]:
        """Live device ids, least recently heard first."""
        return list(self._devices)


def _push_plan(block: SampleBlock, origin: str, buffer: int
               ) -> Tuple[np.ndarray, np.ndarray, List[Tuple[str, int, int]]]:
    """The block's times and values grouped by device (stable), and (device, start, stop)
    slices of them, pushed in the order the line-by-line path makes them: a device's full
    buffer is pushed when its last sample arrives; the partial rest of every device after the
    batch, in the order those rests began."""
    if block.devices is None:
        devices: Sequence[str] = (origin,)
        index = np.zeros(block.t.size, np.intp)
    else:
        devices, index = block.devices, block.device_index
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index, minlength=len(devices))
    rows = order.tolist()  # row of the block (its arrival order) of each grouped sample
    plan = []
    start = 0
    for device, count in zip(devices, counts.tolist()):
        for a in range(start, start + count, buffer):
            b = min(a + buffer, start + count)
            key = (0, rows[b - 1]) if b - a == buffer else (1, rows[a])
            plan.append((key, device, a, b))
        start += count
    plan.sort(key=lambda p: p[0])
    return (block.t[order], block.values[order],
            [(device, a, b) for _, device, a, b in plan])
