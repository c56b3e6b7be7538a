"""Where the daemon's lines come from: stdin, a file, TCP, UDP, a serial port, or memory.

Every source turns bytes into bounded lines (`LineSplitter`) and hands them out in `Received`
batches from `poll(timeout)`. `Received.origin` names the connection; it becomes the device id
of lines that carry none. Network sources bind 127.0.0.1 unless told otherwise. What a source
wants logged (a refused or idle connection) waits in `take_notices()`.
"""
from __future__ import annotations

import os
import select
import socket
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, fields
from typing import IO, Any, Deque, Dict, Iterable, List, Optional, Tuple

from har_runtime.daemon.lines import DEFAULT_MAX_LINE, LineSplitter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_BAUD = 115200
DEFAULT_MAX_CONNECTIONS = 16
#: Half the connections: one address alone cannot take every slot.
DEFAULT_MAX_PER_ADDRESS = 8
#: A sensor streaming at any useful rate is never silent this long; a silent peer only holds a slot.
DEFAULT_IDLE_TIMEOUT_S = 60.0
#: Bytes read per system call; together with max_line it bounds one poll's memory.
READ_SIZE = 65536
#: Datagrams read per UDP poll, so one busy sender cannot starve the loop.
UDP_BURST = 256


class SourceError(Exception):
    """A source that cannot be opened or that failed for good (one-line message)."""


@dataclass(frozen=True)
class Received:
    """Lines read in one go from one connection, with the `time.perf_counter()` of arrival.

    `closed` says the connection has ended: nothing will ever arrive from `origin` again.
    """

    lines: List[bytes]
    origin: str
    arrival: float
    closed: bool = False


@dataclass(frozen=True)
class TcpOptions:
    """Limits of the TCP source: connections at once, of them from one peer address, and the
    seconds a connection may stay silent before it is closed (0: never)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_per_address < 1:
            raise ValueError("max_connections and max_per_address must be >= 1")
        if not self.idle_timeout_s >= 0:
            raise ValueError("idle_timeout_s must be >= 0 (0: no idle timeout)")


@dataclass
class SourceCounters:
    """Cumulative transport counts of a source."""

    bytes: int = 0
    lines: int = 0
    overlong: int = 0
    #: Unterminated last lines of connections that ended (cut off, never parsed).
    truncated: int = 0
    connections: int = 0
    refused_connections: int = 0
    refused_per_address: int = 0
    idle_closed: int = 0
    datagrams: int = 0

    def to_dict(self) -> Dict[str, int]:
        """Plain dict of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Source(ABC):
    """A producer of lines. `finished` turns True when no more data can ever arrive."""

    def __init__(self, max_line: int):
        self.max_line = max_line
        self.counters = SourceCounters()
        self.finished = False
        self._notices: List[Dict[str, Any]] = []

    @abstractmethod
    def poll(self, timeout: float) -> List[Received]:
        """Wait up to `timeout` seconds for data; return what arrived (maybe nothing)."""

    def describe(self) -> Dict[str, Any]:
        """What this source is, for the daemon's start-up log line."""
        return {"source": type(self).__name__}

    def close(self) -> None:
        """Release sockets and files."""

    def take_notices(self) -> List[Dict[str, Any]]:
        """Log entries (each with an "event" key) gathered since the last call."""
        notices, self._notices = self._notices, []
        return notices

    def _lines(self, splitter: LineSplitter, data: bytes, origin: str,
               at_end: bool = False) -> Optional[Received]:
        before = splitter.overlong
        lines = splitter.feed(data) + (splitter.finish() if at_end else [])
        self.counters.bytes += len(data)
        self.counters.overlong += splitter.overlong - before
        self.counters.lines += len(lines)
        return Received(lines, origin, time.perf_counter()) if lines else None


class FdSource(Source):
    """A byte stream with a file descriptor: stdin, a pipe or a regular file."""

    def __init__(self, stream: IO[bytes], origin: str, max_line: int):
        super().__init__(max_line)
        self._stream, self._origin = stream, origin
        try:
            self._fd = stream.fileno()
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
            raise SourceError(f"{origin} has no readable file descriptor") from None
        self._splitter = LineSplitter(max_line)

    def describe(self) -> Dict[str, Any]:
        return {"source": self._origin}

    def poll(self, timeout: float) -> List[Received]:
        if self.finished:
            return []
        # select() (unlike epoll) also accepts regular files, which are always readable.
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self._fd, READ_SIZE)
        self.finished = not data
        rx = self._lines(self._splitter, data, self._origin, at_end=not data)
        return [rx] if rx else []

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()


def file_source(path: str, max_line: int) -> FdSource:
    """Read a CSV / JSON-lines file once, start to end."""
    try:
        return FdSource(open(path, "rb"), "file", max_line)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def split_host_port(spec: str, what: str) -> Tuple[str, int]:
    """``[HOST:]PORT`` (HOST may be ``[v6]``) with the defaults filled in; `what` names the
    source in the error."""
    host, _, port = spec.rpartition(":") if ":" in spec else ("", "", spec)
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise SourceError(f"{what}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise SourceError(f"{what}: port {number} is out of range 0-65535")
    return host, number


def bind_socket(kind: int, host: str, port: int) -> socket.socket:
    """A non-blocking socket of `kind` bound to host:port, or SourceError saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=kind)[0][0]
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise SourceError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class UdpSource(Source):
    """A UDP socket; each datagram holds one or more whole lines (origin ``udp:PEER_HOST``)."""

    def __init__(self, host: str, port: int, max_line: int):
        super().__init__(max_line)
        self._sock = bind_socket(socket.SOCK_DGRAM, host, port)

    @property
    def address(self) -> Tuple[str, int]:
        """The bound (host, port); useful after binding port 0."""
        return self._sock.getsockname()[:2]

    def describe(self) -> Dict[str, Any]:
        return {"source": "udp", "host": self.address[0], "port": self.address[1]}

    def poll(self, timeout: float) -> List[Received]:
        ready, _, _ = select.select([self._sock], [], [], timeout)
        out: List[Received] = []
        for _ in range(UDP_BURST if ready else 0):
            try:
                data, peer = self._sock.recvfrom(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # e.g. an ICMP error reported on the socket; the next datagram is fine
            self.counters.datagrams += 1
            rx = self._lines(LineSplitter(self.max_line), data, f"udp:{peer[0]}", at_end=True)
            if rx:
                out.append(rx)
        return out

    def close(self) -> None:
        self._sock.close()


class SerialSource(Source):
    """A serial port (needs the optional pyserial package, har-edge's `serial` extra)."""

    def __init__(self, device: str, baud: int, max_line: int):
        super().__init__(max_line)
        try:
            import serial  # noqa: PLC0415 - optional extra, imported only when asked for
        except ImportError:
            raise SourceError("the serial source needs pyserial: pip install 'pyserial>=3.5' "
                              "(in the har-edge checkout: pip install -e '.[serial]')") from None
        self._error = serial.SerialException
        try:
            self._port = serial.Serial(device, baud, timeout=0)
        except (self._error, OSError, ValueError) as exc:
            raise SourceError(f"cannot open serial port {device}: {exc}") from None
        self._device, self._baud = device, baud
        self._splitter = LineSplitter(max_line)

    def describe(self) -> Dict[str, Any]:
        return {"source": "serial", "device": self._device, "baud": self._baud}

    def poll(self, timeout: float) -> List[Received]:
        try:
            ready, _, _ = select.select([self._port.fileno()], [], [], timeout)
            data = self._port.read(max(1, self._port.in_waiting)) if ready else b""
        except (self._error, OSError) as exc:
            raise SourceError(f"serial port {self._device} failed: {exc}") from None
        rx = self._lines(self._splitter, data, "serial") if data else None
        return [rx] if rx else []

    def close(self) -> None:
        self._port.close()


class MemorySource(Source):
    """In-memory (origin, bytes) chunks, one per poll; for tests and embedding."""

    def __init__(self, chunks: Iterable[Tuple[str, bytes]], max_line: int = DEFAULT_MAX_LINE):
        super().__init__(max_line)
        self._chunks: Deque[Tuple[str, bytes]] = deque(chunks)
        self._splitters: Dict[str, LineSplitter] = {}

    def poll(self, timeout: float) -> List[Received]:
        if not self._chunks:
            self.finished = True
            tails = [self._lines(s, b"", o, at_end=True) for o, s in self._splitters.items()]
            self._splitters.clear()
            return [rx for rx in tails if rx]
        origin, data = self._chunks.popleft()
        splitter = self._splitters.setdefault(origin, LineSplitter(self.max_line))
        rx = self._lines(splitter, data, origin)
        return [rx] if rx else []


def open_source(uri: str, max_line: int, tcp: TcpOptions = TcpOptions()) -> Source:
    """Build a source from ``stdin``, ``file:PATH``, ``tcp:[HOST:]PORT``, ``udp:[HOST:]PORT``,
    ``serial:DEVICE[@BAUD]``, ``http:[HOST:]PORT[?OPTIONS]`` or
    ``mqtt[s]://[USER[:PASS]@]HOST[:PORT]/TOPIC[?OPTIONS]``."""
    kind, _, rest = uri.partition(":")
    if kind == "http":
        from har_runtime.daemon.http_source import http_source  # noqa: PLC0415 - import cycle
        return http_source(rest, max_line, tcp.max_connections)
    if kind in ("mqtt", "mqtts"):
        from har_runtime.daemon.mqtt_source import MqttSource  # noqa: PLC0415 - import cycle
        return MqttSource.open(uri, max_line)
    if kind == "stdin" and not rest:
        return FdSource(sys.stdin.buffer, "stdin", max_line)
    if kind == "file" and rest:
        return file_source(rest, max_line)
    if kind == "tcp":
        from har_runtime.daemon.tcp_source import TcpSource  # noqa: PLC0415 - import cycle
        return TcpSource(*split_host_port(rest, uri), max_line, tcp)
    if kind == "udp":
        return UdpSource(*split_host_port(rest, uri), max_line)
    if kind == "serial" and rest:
        device, _, baud = rest.partition("@")
        if baud and not baud.isdigit():
            raise SourceError(f"{uri}: baud rate {baud!r} is not a number")
        return SerialSource(device, int(baud) if baud else DEFAULT_BAUD, max_line)
    raise SourceError(f"unknown source {uri!r}; use stdin, file:PATH, tcp:[HOST:]PORT, "
                      "udp:[HOST:]PORT, serial:DEVICE[@BAUD], http:[HOST:]PORT or "
                      "mqtt://HOST[:PORT]/TOPIC")
