"""`http:[HOST:]PORT`: an HTTP endpoint for Sensor Logger pushes and plain JSON sample bodies.

Each POST body (any path) is decoded by `sensor_logger.decode_body` into sample lines. Handler
threads (one per connection, at most `max_connections`) hand bodies to the daemon's single
loop through a bounded queue and answer only once the loop has fed the body's lines to the
engine: 200 with the body's counts, 400 with the reason for an unusable body, 411 without a
Content-Length, 413 over `max_body` bytes, 503 (Retry-After) when the daemon is saturated, 405
for other methods. The engine then counts every line as it does for any other source.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

from har_runtime.daemon.sensor_logger import (BodyCounters, BodyError, Decoded, DecodeOptions,
                                              decode_body, parse_json)
from har_runtime.daemon.sources import (DEFAULT_MAX_CONNECTIONS, Received, Source, SourceError,
                                        split_host_port)

#: Largest accepted body: a 1 s Sensor Logger batch of four sensors at 100 Hz is ~60 KiB.
DEFAULT_MAX_BODY = 1 << 20
#: Bodies waiting for the loop; beyond this a POST gets 503 and should be retried.
MAX_PENDING = 64
#: How long a handler waits for the loop to take its body before answering 503.
ACCEPT_TIMEOUT_S = 10.0
#: Seconds an idle keep-alive connection (or a slow body) may take before it is closed.
SOCKET_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class HttpOptions:
    """Query options of ``http:[HOST:]PORT?acc=..&max_body=..&pair_tolerance_s=..``."""

    decode: DecodeOptions = DecodeOptions()
    max_body: int = DEFAULT_MAX_BODY

    @classmethod
    def parse(cls, query: str) -> "HttpOptions":
        """Options from a URL query string; raises SourceError for unknown or bad values."""
        given = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        unknown = set(given) - {"acc", "max_body", "pair_tolerance_s"}
        if unknown:
            raise SourceError(f"unknown http option(s) {sorted(unknown)}; "
                              "known: acc, max_body, pair_tolerance_s")
        try:
            decode = DecodeOptions(given.get("acc", DecodeOptions.acc),
                                   float(given.get("pair_tolerance_s",
                                                   DecodeOptions.pair_tolerance_s)))
            max_body = int(given.get("max_body", DEFAULT_MAX_BODY))
        except ValueError as exc:
            raise SourceError(f"http option: {exc}") from None
        if max_body < 1:
            raise SourceError("http option max_body must be >= 1")
        return cls(decode, max_body)


@dataclass
class HttpCounters(BodyCounters):
    """Body counts plus what became of each request:

    requests == accepted_bodies + rejected_bodies + too_large + busy + bad_method
    """

    requests: int = 0
    accepted_bodies: int = 0
    rejected_bodies: int = 0
    too_large: int = 0
    busy: int = 0
    bad_method: int = 0


@dataclass
class _Body:
    """One decoded body waiting for the loop; `done` is set once the engine has fed it
    (`fed` True) or once the daemon stops without having taken it (`fed` False)."""

    received: Received
    done: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    fed: bool = False


class HttpSource(Source):
    """A threaded HTTP server feeding the single-threaded daemon loop."""

    def __init__(self, host: str, port: int, max_line: int, options: HttpOptions = HttpOptions(),
                 max_connections: int = DEFAULT_MAX_CONNECTIONS):
        super().__init__(max_line)
        self.options = options
        self.counters = HttpCounters()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: Deque[_Body] = deque()
        self._fed: List[_Body] = []
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closing = False
        try:
            self._server = _Server((host, port), _handler_for(self))
        except OSError as exc:
            raise SourceError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
        self._server.slots, self._server.source = self._slots, self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="http-source", daemon=True)
        self._thread.start()

    @property
    def address(self) -> Tuple[str, int]:
        """The bound (host, port); useful after binding port 0."""
        return self._server.server_address[:2]

    def describe(self) -> Dict[str, Any]:
        return {"source": "http", "host": self.address[0], "port": self.address[1],
                "acc": self.options.decode.acc, "max_body": self.options.max_body}

    def poll(self, timeout: float) -> List[Received]:
        """Acknowledge the bodies the loop fed since the last poll; return the waiting ones."""
        with self._ready:
            self._acknowledge()
            if not self._queue:
                self._ready.wait(timeout)
            taken = list(self._queue)
            self._queue.clear()
            for body in taken:
                body.taken = True
            self._fed = taken
        return [body.received for body in taken]

    def _acknowledge(self) -> None:
        for body in self._fed:
            body.fed = True
            body.done.set()
        self._fed = []

    def submit(self, received: Received, timeout: float = ACCEPT_TIMEOUT_S) -> bool:
        """From a handler thread: queue lines and wait until the loop has fed them. False when
        the queue is full, the daemon is stopping, or the loop did not take them in time (then
        they were withdrawn, so a retry cannot double them)."""
        body = _Body(received)
        with self._ready:
            if self._closing or len(self._queue) >= MAX_PENDING:
                return False
            self._queue.append(body)
            self._ready.notify()
        if not body.done.wait(timeout):
            with self._ready:
                if not body.taken and not body.done.is_set():
                    self._queue.remove(body)
                    return False
            body.done.wait()  # taken: fed by the next poll (or close) of the loop
        return body.fed

    def count(self, **deltas: int) -> None:
        """Add to counters from a handler thread."""
        with self._lock:
            for name, value in deltas.items():
                setattr(self.counters, name, getattr(self.counters, name) + value)

    def accepted(self, decoded: Decoded) -> None:
        """Count a body the engine was fed; only then, so a 503'd body retried counts once."""
        with self._lock:
            self.counters.accepted_bodies += 1
            self.counters.add(decoded)

    def reject(self, counter: str, reason: str) -> None:
        """Count a refused request and remember why."""
        with self._lock:
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
            self.counters.last_rejected = reason

    def close(self) -> None:
        with self._ready:
            self._closing = True
            self._acknowledge()  # the loop fed the last poll's bodies before closing us
            for body in self._queue:  # never taken: their handlers answer 503 at once
                body.done.set()
            self._queue.clear()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    slots: threading.BoundedSemaphore
    source: HttpSource

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.source.count(refused_connections=1)
            self.shutdown_request(request)
            return
        self.source.count(connections=1)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _handler_for(source: HttpSource):
    class Handler(_Handler):
        pass

    Handler.source = source
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a phone pushing every second reuses one socket
    timeout = SOCKET_TIMEOUT_S
    server_version = "har-runtime"
    source: HttpSource

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """Decode the body, hand its lines to the loop, answer once they were fed."""
        source = self.source
        source.count(requests=1)
        body = self._body()
        if body is None:
            return
        source.count(bytes=len(body))
        try:
            decoded = decode_body(parse_json(body), source.options.decode)
        except BodyError as exc:
            source.reject("rejected_bodies", str(exc))
            return self._reply(400, {"error": str(exc)})
        if decoded.lines:
            rx = Received(decoded.lines, f"http:{self.client_address[0]}", time.perf_counter())
            if not source.submit(rx):
                source.reject("busy", "daemon busy or stopping")
                self._reply(503, {"error": "busy; retry"}, {"Retry-After": "1"})
                return
        source.accepted(decoded)
        self._reply(200, decoded.summary())

    def _body(self) -> Optional[bytes]:
        """The request body, or None after answering 411/413 (the connection is then closed)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.source.reject("rejected_bodies", "no Content-Length")
            self._reply(411, {"error": "Content-Length required"}, close=True)
            return None
        if int(length) > self.source.options.max_body:
            self.source.reject("too_large", f"body of {length} bytes")
            self._reply(413, {"error": f"body over {self.source.options.max_body} bytes"},
                        close=True)
            return None
        try:
            body = self.rfile.read(int(length))
        except OSError:  # the peer stalled past SOCKET_TIMEOUT_S or went away
            body = b""
        if len(body) < int(length):
            self.source.reject("rejected_bodies", "body shorter than its Content-Length")
            self.close_connection = True
            return None
        return body

    def _not_allowed(self) -> None:
        self.source.count(requests=1)
        self.source.reject("bad_method", f"method {self.command}")
        self._reply(405, {"error": "POST a JSON body"}, {"Allow": "POST"})

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def _reply(self, status: int, payload: Dict[str, Any],
               headers: Optional[Dict[str, str]] = None, close: bool = False) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: the daemon's counters and stats lines report requests."""


def http_source(rest: str, max_line: int, max_connections: int) -> HttpSource:
    """An `HttpSource` from the part of ``http:[HOST:]PORT[?OPTIONS]`` after ``http:``."""
    address, _, query = rest.partition("?")
    host, port = split_host_port(address, "http:" + rest)
    return HttpSource(host, port, max_line, HttpOptions.parse(query), max_connections)
