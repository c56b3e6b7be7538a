"""`python -m har_runtime.cli serve` as a real process: TCP, SIGTERM, SIGHUP (golden bundle)."""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from har_runtime.bundle import load_bundle
from har_runtime.stream import offline_windows
from har_train.data.synthetic import synthetic_recording
from test_stream_mock import golden_bundle

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
DEADLINE_S = 20.0


class Daemon:
    """The serve command on 127.0.0.1:<free port>, with stdout/stderr read by threads."""

    def __init__(self, bundle, *extra):
        settings = Path(bundle).parent / "serve.toml"
        settings.write_text("stats_interval = 0.2\n")
        cmd = [sys.executable, "-m", "har_runtime.cli", "serve", str(bundle), "--source",
               "tcp:127.0.0.1:0", "--config", str(settings), *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.out, self.err = queue.Queue(), queue.Queue()
        self.events, self.logs = [], []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, q=q: [q.put(x) for x in s], daemon=True
                             ).start()
        start = self.wait_log(lambda e: e["event"] == "start")
        self.address = (start["host"], start["port"])

    def _drain(self):
        for q, into in ((self.out, self.events), (self.err, self.logs)):
            while not q.empty():
                line = q.get_nowait().strip()
                try:
                    into.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # the interpreter's own "INFO: Created ... delegate" notices

    def _until(self, found):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            self._drain()
            hit = found()
            if hit:
                return hit
            assert self.proc.poll() is None, f"daemon exited early: {self.logs}"
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError(f"timed out; logs so far: {self.logs[-5:]}")

    def wait_log(self, match):
        return self._until(lambda: next((e for e in self.logs if match(e)), None))

    def wait_predictions(self, device, n):
        return self._until(lambda: len(self.predictions(device)) >= n)

    def predictions(self, device):
        return [e for e in self.events if e["type"] == "prediction" and e["device"] == device]

    def send(self, device, times, frames):
        lines = "".join(f"{device},{t!r},{','.join(map(repr, row))}\n"
                        for t, row in zip(times, frames))
        with socket.create_connection(self.address, timeout=5) as sock:
            sock.sendall(lines.encode())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(DEADLINE_S)
        time.sleep(0.1)  # let the reader threads take the last lines
        self._drain()
        return code


@pytest.fixture
def bundle_copy(tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(golden_bundle(), copy)
    return copy


@pytest.fixture(scope="module")
def data():
    rec = synthetic_recording(5, seconds_per_activity=8.0)
    return rec.times + 1000.0, rec


def expected_windows(spec, times, rec):
    return len(offline_windows(spec, times, rec.frames(spec.channels)).t_end)


def test_sigterm_drains_and_exits_zero_with_final_counters(bundle_copy, data):
    spec = load_bundle(bundle_copy).spec
    times, rec = data
    daemon = Daemon(bundle_copy)
    daemon.send("dev-a", times, rec.frames(spec.channels))
    n = expected_windows(spec, times, rec)
    daemon.wait_predictions("dev-a", n)
    daemon.wait_log(lambda e: e["event"] == "stats" and e["predictions"] == n)
    assert daemon.stop() == 0
    final = daemon.logs[-1]
    assert final["event"] == "final" and final["predictions"] == n
    assert final["lines"] == final["samples"] == final["samples_in"] == len(times)
    assert final["frames"] == final["advanced"] + final["discarded"] + final["buffered"]
    assert final["per_device"]["dev-a"]["windows"] == n
    assert len(daemon.predictions("dev-a")) == n
    assert 0 <= np.median([e["latency_s"] for e in daemon.predictions("dev-a")]) < 1.0


def test_sighup_with_corrupt_bundle_keeps_serving_then_good_bundle_reloads(bundle_copy, data):
    spec = load_bundle(bundle_copy).spec
    times, rec = data
    frames = rec.frames(spec.channels)
    n = expected_windows(spec, times, rec)
    daemon = Daemon(bundle_copy)
    daemon.send("one", times, frames)
    daemon.wait_predictions("one", n)

    model = bundle_copy / load_bundle(bundle_copy).variants[
        load_bundle(bundle_copy).recommended].file
    original = model.read_bytes()
    model.write_bytes(original[:-7] + b"garbage")
    daemon.proc.send_signal(signal.SIGHUP)
    failed = daemon.wait_log(lambda e: e["event"] == "reload_failed")
    assert "sha256 mismatch" in failed["error"] and str(bundle_copy) in failed["serving"]
    daemon.send("two", times, frames)  # the old model still serves
    daemon.wait_predictions("two", n)

    model.write_bytes(original)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log(lambda e: e["event"] == "reload")
    daemon.send("three", times, frames)
    daemon.wait_predictions("three", n)
    assert daemon.stop() == 0
    final = daemon.logs[-1]
    assert (final["reloads"], final["reload_failures"]) == (1, 1)
    assert set(final["per_device"]) == {"three"}  # device state was rebuilt by the reload
    assert final["predictions"] == 3 * n
    first = [(e["t_end"], e["label"]) for e in daemon.predictions("one")]
    assert [(e["t_end"], e["label"]) for e in daemon.predictions("three")] == first
