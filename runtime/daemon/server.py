"""The daemon's main loop: poll the source, feed the engine, write the sink, log counters.

Single-threaded on purpose: one loop owns every piece of state, so signals only set flags.
SIGTERM/SIGINT stop after one last non-blocking read (drain) and log the final counters;
SIGHUP reloads the model (a bad bundle keeps the old one serving) and re-opens a file sink.
Log lines on stderr are JSON objects with an "event" key: start, stats, reload,
reload_failed, connection_refused, idle_closed, warning, final. Python warnings raised while
serving (numpy's overflow warnings, say) become `warning` lines, so the log stays one JSON
object per line.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import warnings
from typing import IO, Any, Dict, Optional

from har_runtime.daemon.engine import Engine
from har_runtime.daemon.sinks import Sink
from har_runtime.daemon.sources import Source

#: Longest wait inside one poll, so stop/reload flags are honoured promptly.
POLL_S = 0.2


class Server:
    """Run `source -> engine -> sink` until the source ends or a stop is requested."""

    def __init__(self, source: Source, engine: Engine, sink: Sink, stats_interval: float = 60.0,
                 log: Optional[IO[str]] = None):
        self.source, self.engine, self.sink = source, engine, sink
        self.stats_interval = stats_interval
        self._log_stream = log if log is not None else sys.stderr
        self._stop = False
        self._reload = False
        self._started = time.monotonic()

    def request_stop(self, *_: Any) -> None:
        """Ask the loop to drain and exit (signal-handler safe)."""
        self._stop = True

    def request_reload(self, *_: Any) -> None:
        """Ask the loop to reload the model before its next read (signal-handler safe)."""
        self._reload = True

    def log(self, event: str, **fields: Any) -> None:
        """One JSON object per line on the log stream."""
        self._log_stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self._log_stream.flush()

    def run(self) -> int:
        """Serve until done; returns the process exit status (0 after a clean stop or EOF)."""
        previous = self._install_signals()
        try:
            with warnings.catch_warnings():
                warnings.showwarning = self._log_warning
                self._serve()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _serve(self) -> None:
        self.log("start", **self.source.describe(), model=self.engine.model.description)
        next_stats = time.monotonic() + self.stats_interval
        try:
            while not self._stop and not self.source.finished:
                if self._reload:
                    self._do_reload()
                self._pump(POLL_S)
                if self.stats_interval > 0 and time.monotonic() >= next_stats:
                    self.log("stats", **self._counters())
                    next_stats = time.monotonic() + self.stats_interval
            if not self.source.finished:
                self._pump(0.0)  # drain what already arrived
        finally:
            self.log("final", **self._counters(per_device=True))
            self.source.close()
            self.sink.close()

    def _log_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        """`warnings.showwarning` while serving: one `warning` log line instead of raw text."""
        self.log("warning", category=category.__name__, message=str(message),
                 where=f"{os.path.basename(filename)}:{lineno}")

    def _pump(self, timeout: float) -> None:
        received = self.source.poll(timeout)
        for notice in self.source.take_notices():
            self.log(**notice)
        for rx in received:
            self.sink.write(self.engine.feed(rx))

    def _do_reload(self) -> None:
        self._reload = False
        ok, message = self.engine.reload()
        if ok:
            self.log("reload", model=message)
        else:
            self.log("reload_failed", error=message, serving=self.engine.model.description)
        self.sink.reopen()

    def _counters(self, per_device: bool = False) -> dict:
        """Every counter; each call starts a new latency interval."""
        return {"uptime_s": round(time.monotonic() - self._started, 3),
                **self.source.counters.to_dict(), **self.sink.stats(),
                **self.engine.snapshot(per_device, new_interval=True)}

    def _install_signals(self) -> Dict[int, Any]:
        """Route signals to the flags; return the handlers they replace."""
        if threading.current_thread() is not threading.main_thread():
            return {}  # embedded use: the caller drives request_stop / request_reload
        wanted = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop}
        if hasattr(signal, "SIGHUP"):
            wanted[signal.SIGHUP] = self.request_reload
        return {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
