"""The TCP source: a server whose every connection is its own line stream (its own device)."""
from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from har_runtime.daemon.lines import LineSplitter
from har_runtime.daemon.sources import (READ_SIZE, Received, Source, TcpOptions, bind_socket)


@dataclass
class _Connection:
    origin: str
    host: str
    splitter: LineSplitter
    last_rx: float


class TcpSource(Source):
    """A TCP server; each connection is its own line stream, with origin
    ``tcp:PEER_HOST:PEER_PORT/N`` (N counts connections from 1), so two connections are two
    devices even from one address. A line cut off by the end of a connection is dropped and
    counted (`truncated`); `options` bound connections and their idle time. `clock`
    (monotonic seconds) measures idleness."""

    def __init__(self, host: str, port: int, max_line: int, options: TcpOptions = TcpOptions(),
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(max_line)
        self.options = options
        self._clock = clock
        self._sock = bind_socket(socket.SOCK_STREAM, host, port)
        self._sock.listen(min(options.max_connections, 128))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._conns: Dict[socket.socket, _Connection] = {}

    @property
    def address(self) -> Tuple[str, int]:
        """The bound (host, port); useful after binding port 0."""
        return self._sock.getsockname()[:2]

    def describe(self) -> Dict[str, Any]:
        return {"source": "tcp", "host": self.address[0], "port": self.address[1]}

    def poll(self, timeout: float) -> List[Received]:
        out: List[Received] = []
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._sock:
                self._accept()
            else:
                rx = self._read(key.fileobj)  # type: ignore[arg-type]
                if rx:
                    out.append(rx)
        return out + self._expire_idle()

    def _accept(self) -> None:
        try:
            conn, peer = self._sock.accept()
        except OSError:
            return
        if self._refuse(peer[0]):
            conn.close()
            return
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.counters.connections += 1
        origin = f"tcp:{peer[0]}:{peer[1]}/{self.counters.connections}"
        self._conns[conn] = _Connection(origin, peer[0], LineSplitter(self.max_line),
                                        self._clock())
        self._selector.register(conn, selectors.EVENT_READ)

    def _refuse(self, host: str) -> bool:
        """Whether a connection from `host` is over a limit; counts (and now and then logs) it."""
        c = self.counters
        if len(self._conns) >= self.options.max_connections:
            c.refused_connections += 1
            reason, count = "max_connections", c.refused_connections
        elif sum(x.host == host for x in self._conns.values()) >= self.options.max_per_address:
            c.refused_per_address += 1
            reason, count = "per_address", c.refused_per_address
        else:
            return False
        if count & (count - 1) == 0:  # the 1st, 2nd, 4th, 8th ...: a flood cannot flood the log
            self._notices.append({"event": "connection_refused", "peer": host,
                                  "reason": reason, "refused": count})
        return True

    def _read(self, conn: socket.socket) -> Optional[Received]:
        connection = self._conns[conn]
        try:
            data = conn.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            return self._hang_up(conn)
        connection.last_rx = self._clock()
        return self._lines(connection.splitter, data, connection.origin)

    def _hang_up(self, conn: socket.socket) -> Received:
        """Close `conn`; its unterminated last line, if any, is counted and dropped."""
        connection = self._conns.pop(conn)
        self._selector.unregister(conn)
        conn.close()
        if connection.splitter.discard():
            self.counters.truncated += 1
        return Received([], connection.origin, time.perf_counter(), closed=True)

    def _expire_idle(self) -> List[Received]:
        timeout = self.options.idle_timeout_s
        if not timeout or not self._conns:
            return []
        now = self._clock()
        out = []
        for conn, connection in list(self._conns.items()):
            idle = now - connection.last_rx
            if idle > timeout:
                self.counters.idle_closed += 1
                self._notices.append({"event": "idle_closed", "origin": connection.origin,
                                      "idle_s": round(idle, 3)})
                out.append(self._hang_up(conn))
        return out

    def close(self) -> None:
        for conn in list(self._conns):
            conn.close()
        self._conns.clear()
        self._selector.close()
        self._sock.close()
