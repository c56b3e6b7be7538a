"""Daemon end to end on loopback TCP and UDP (mock classifier, server loop in a thread)."""
import io
import json
import socket
import threading
import time

import numpy as np
import pytest

from har_runtime.contract.results import Prediction
from har_runtime.daemon.engine import Engine, EngineSettings
from har_runtime.daemon.server import Server
from har_runtime.daemon.sinks import MemorySink
from har_runtime.daemon.sources import SourceError, TcpOptions, UdpSource, open_source
from har_runtime.daemon.tcp_source import TcpSource
from test_daemon_engine import check_accounting, csv_lines, device_data, expected, got, mock_model

DEADLINE_S = 15.0


class Running:
    """A Server on a background thread (signals are not touched off the main thread)."""

    def __init__(self, source, settings=EngineSettings(), loader=mock_model):
        self.source, self.sink, self.log = source, MemorySink(), io.StringIO()
        self.server = Server(source, Engine(loader, settings), self.sink, stats_interval=0.05,
                             log=self.log)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def wait_for(self, n_predictions):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            if sum(isinstance(e, Prediction) for e in list(self.sink.events)) >= n_predictions:
                return
            time.sleep(0.02)
        raise AssertionError(f"only {len(self.sink.events)} events after {DEADLINE_S} s")

    def stop(self):
        self.server.request_stop()
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive()
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


def n_windows(t):
    return 1 + (int(np.floor((t[-1] - t[0]) * 50)) + 1 - 32) // 16


def test_tcp_two_connections_two_devices_with_garbage():
    run = Running(TcpSource("127.0.0.1", 0, max_line=200))
    host, port = run.source.address
    assert host == "127.0.0.1"
    data = {"left": device_data(1), "right": device_data(2)}
    rng = np.random.default_rng(0)
    clients = []
    for device, (t, x) in data.items():
        lines = csv_lines(device, t, x)
        lines[50:50] = [b"not,a,sample\n", b"9" * 300 + b"\n", b"right,1,nan,0,0\n"]
        sock = socket.create_connection((host, port), timeout=5)
        clients.append((sock, b"".join(lines)))
    for sock, payload in clients:  # interleave partial writes of both connections
        for a in range(0, len(payload), 997):
            sock.sendall(payload[a:a + 997])
            time.sleep(float(rng.uniform(0, 0.0005)))
    for sock, _ in clients:
        sock.close()
    run.wait_for(sum(n_windows(t) for t, _ in data.values()))
    logs = run.stop()
    for device, (t, x) in data.items():
        assert got(run.sink.events, device) == expected(device, t, x)
    final = logs[-1]
    assert (final["connections"], final["malformed"], final["overlong"], final["nonfinite"]) == \
        (2, 2, 2, 2)
    assert any(entry["event"] == "stats" for entry in logs)
    assert logs[0] == {"event": "start", "source": "tcp", "host": host, "port": port,
                       "model": "mock"}
    check_accounting(final)


def test_tcp_connection_limit_refuses_extra_clients():
    run = Running(TcpSource("127.0.0.1", 0, max_line=200,
                            options=TcpOptions(max_connections=1)))
    first = socket.create_connection(run.source.address, timeout=5)
    t, x = device_data(3, 5.0)
    first.sendall(b"".join(csv_lines("solo", t, x)))
    run.wait_for(n_windows(t))
    second = socket.create_connection(run.source.address, timeout=5)
    second.settimeout(5)
    assert second.recv(10) == b""  # accepted and closed at once
    second.close()
    first.sendall(b"solo,1,2,3\n")  # the first connection keeps working
    first.close()
    final = run.stop()[-1]
    assert (final["connections"], final["refused_connections"]) == (1, 1)
    assert final["malformed"] == 1


def test_udp_datagrams_with_several_lines_and_devices():
    run = Running(UdpSource("127.0.0.1", 0, max_line=200))
    data = {"u1": device_data(7, 10.0), "u2": device_data(8, 10.0)}
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    streams = {d: csv_lines(d, *tx) for d, tx in data.items()}
    sent = 0
    for i in range(0, len(streams["u1"]), 10):
        for device in streams:
            sender.sendto(b"".join(streams[device][i:i + 10]), run.source.address)
            sent += 1
        end = time.monotonic() + DEADLINE_S
        while run.source.counters.datagrams < sent - 10 and time.monotonic() < end:
            time.sleep(0.001)  # stay well inside the loopback receive buffer
    sender.sendto(b"x" * 300 + b"\nu1,bad\n", run.source.address)
    sender.close()
    run.wait_for(sum(n_windows(t) for t, _ in data.values()))
    logs = run.stop()
    for device, (t, x) in data.items():
        assert got(run.sink.events, device) == expected(device, t, x)
    final = logs[-1]
    assert (final["overlong"], final["malformed"]) == (1, 1)
    assert final["datagrams"] == 2 * len(range(0, len(streams["u1"]), 10)) + 1
    check_accounting(final)


@pytest.mark.parametrize("uri, message", [
    ("tcp:127.0.0.1:notaport", "not a number"),
    ("udp:70000", "out of range"),
    ("ftp:x", "unknown source"),
    ("file:/nonexistent/x.csv", "cannot read"),
    ("serial:/dev/nonexistent@fast", "baud rate"),
])
def test_bad_source_uris_fail_cleanly(uri, message):
    with pytest.raises(SourceError, match=message):
        open_source(uri, 100)


def test_port_in_use_is_a_clean_error():
    taken = TcpSource("127.0.0.1", 0, 100)
    try:
        with pytest.raises(SourceError, match="cannot bind"):
            TcpSource("127.0.0.1", taken.address[1], 100)
    finally:
        taken.close()


def test_serial_without_pyserial_names_the_extra():
    import importlib.util
    if importlib.util.find_spec("serial") is not None:
        pytest.skip("pyserial is installed here")
    with pytest.raises(SourceError, match=r"pip install 'pyserial>=3\.5'.*'\.\[serial\]'"):
        open_source("serial:/dev/ttyUSB0@9600", 100)
