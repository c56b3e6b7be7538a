"""Where the daemon's events go: JSON lines on stdout, appended to a file, or kept in memory."""
from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from typing import IO, Any, Dict, List, Optional, Sequence

from har_runtime.stream import Event


class SinkError(Exception):
    """A sink that cannot be opened or written (one-line message)."""


class Sink(ABC):
    """A consumer of prediction and activity-change events."""

    @abstractmethod
    def write(self, events: Sequence[Event]) -> None:
        """Deliver events, in order."""

    def reopen(self) -> None:
        """Re-open the destination (after log rotation); default: nothing to do."""

    def stats(self) -> Dict[str, Any]:
        """Counters for the daemon's stats lines (keys prefixed ``sink_``); default: none."""
        return {}

    def close(self) -> None:
        """Flush and release the destination."""


class StreamSink(Sink):
    """JSON lines to an open text stream (stdout by default), flushed after every batch."""

    def __init__(self, stream: Optional[IO[str]] = None):
        self._stream = stream if stream is not None else sys.stdout

    def write(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            self._stream.write("".join(e.to_json() + "\n" for e in events))
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise SinkError(f"cannot write events: {exc}") from None


class FileSink(StreamSink):
    """JSON lines appended to a file; `reopen` (SIGHUP) starts a fresh handle after rotation."""

    def __init__(self, path: str):
        self._path = path
        super().__init__(self._open())

    def _open(self) -> IO[str]:
        try:
            return open(self._path, "a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot append to {self._path}: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        fresh = self._open()
        self._stream.close()
        self._stream = fresh

    def close(self) -> None:
        self._stream.close()


class MemorySink(Sink):
    """Keeps every event in `events`; for tests and embedding."""

    def __init__(self) -> None:
        self.events: List[Event] = []

    def write(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


def open_sink(uri: str) -> Sink:
    """Build a sink from ``stdout``, ``file:PATH`` or ``mqtt[s]://HOST[:PORT]/BASE[?OPTIONS]``."""
    if uri == "stdout":
        return StreamSink()
    kind, _, path = uri.partition(":")
    if kind == "file" and path:
        return FileSink(path)
    if kind in ("mqtt", "mqtts"):
        from har_runtime.daemon.mqtt_sink import MqttSink  # noqa: PLC0415 - import cycle
        return MqttSink.open(uri)
    raise SinkError(f"unknown sink {uri!r}; use stdout, file:PATH or mqtt://HOST[:PORT]/BASE")
