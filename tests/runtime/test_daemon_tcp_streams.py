"""TCP connections as streams: per-connection devices, cut-off lines, idle and address limits."""
import socket
import time

import pytest

from har_runtime.contract.results import Prediction
from har_runtime.daemon.sources import TcpOptions
from har_runtime.daemon.tcp_source import TcpSource
from test_daemon_engine import check_accounting, csv_lines, device_data, expected, got
from test_daemon_network import DEADLINE_S, Running, n_windows


def until(condition):
    """Wait (bounded) for a condition the daemon thread makes true; return it."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_two_connections_from_one_address_without_device_ids_are_two_streams():
    run = Running(TcpSource("127.0.0.1", 0, max_line=200))
    data = [device_data(11, 12.0), device_data(12, 12.0)]
    socks = [socket.create_connection(run.source.address, timeout=5) for _ in data]
    payloads = [b"".join(csv_lines(None, t, x)) for t, x in data]
    for a in range(0, max(map(len, payloads)), 701):  # both streams arrive interleaved
        for sock, payload in zip(socks, payloads):
            sock.sendall(payload[a:a + 701])
    run.wait_for(sum(n_windows(t) for t, _ in data))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    until(lambda: run.server.engine.counters.ended_devices == 2)
    logs = run.stop()
    devices = {e.device for e in run.sink.events if isinstance(e, Prediction)}
    assert len(devices) == 2
    for port, (t, x) in zip(ports, data):
        device = next(d for d in devices if d.startswith(f"tcp:127.0.0.1:{port}/"))
        assert got(run.sink.events, device) == expected(device, t, x)
    final = logs[-1]
    assert (final["gaps"], final["devices_seen"]) == (0, 2)
    assert final["devices"] == 0  # each connection's device was retired when it closed
    check_accounting(final)


def test_a_line_cut_off_by_a_disconnect_is_discarded_and_counted():
    run = Running(TcpSource("127.0.0.1", 0, max_line=200))
    with socket.create_connection(run.source.address, timeout=5) as sock:
        sock.sendall(b"tr,3.980,0.0,0.0,9.81\ntr,4.000,0.0,0.0,9")
    c = run.source.counters
    until(lambda: c.lines == 2 or getattr(c, "truncated", 0) == 1)
    final = run.stop()[-1]
    assert (final["lines"], final["samples"], final["truncated"]) == (1, 1, 1)
    assert final["malformed"] == 0
    check_accounting(final)


def test_idle_connections_from_one_address_cannot_lock_out_another():
    run = Running(TcpSource("127.0.0.1", 0, max_line=200))  # the default limits
    limit = TcpOptions().max_connections
    idle = [socket.create_connection(run.source.address, timeout=5) for _ in range(limit)]
    c = run.source.counters
    until(lambda: c.connections + c.refused_connections + getattr(c, "refused_per_address", 0)
          == limit)
    other = socket.socket()
    other.bind(("127.0.0.2", 0))
    other.connect(run.source.address)
    t, x = device_data(13, 5.0)
    other.sendall(b"".join(csv_lines("other", t, x)))
    run.wait_for(n_windows(t))
    other.close()
    for sock in idle:
        sock.close()
    logs = run.stop()
    assert got(run.sink.events, "other") == expected("other", t, x)
    per_address = TcpOptions().max_per_address
    final = logs[-1]
    assert (final["connections"], final["refused_per_address"]) == \
        (per_address + 1, limit - per_address)
    refusals = [e for e in logs if e["event"] == "connection_refused"]
    # Logged at the 1st, 2nd, 4th, 8th ... refusal, so a flood cannot flood the log.
    assert [e["refused"] for e in refusals] == [n for n in (1, 2, 4, 8, 16)
                                               if n <= limit - per_address]
    assert all(e["peer"] == "127.0.0.1" and e["reason"] == "per_address" for e in refusals)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def poll_until(source, condition):
    end = time.monotonic() + DEADLINE_S
    out = []
    while time.monotonic() < end and not condition():
        out += source.poll(0.05)
    assert condition()
    return out


def test_idle_connections_are_closed_after_the_timeout_and_counted():
    clock = FakeClock()
    source = TcpSource("127.0.0.1", 0, max_line=200, options=TcpOptions(idle_timeout_s=30.0),
                       clock=clock)
    try:
        quiet = socket.create_connection(source.address, timeout=5)
        busy = socket.create_connection(source.address, timeout=5)
        poll_until(source, lambda: source.counters.connections == 2)
        sent = b"q,1.0,0,0,1\nq,1.02,0,0"  # then silence, mid-line
        quiet.sendall(sent)
        poll_until(source, lambda: source.counters.bytes == len(sent))
        clock.now += 20.0
        busy.sendall(b"b,1.0,0,0,1\n")
        poll_until(source, lambda: source.counters.lines == 2)
        clock.now += 15.0  # quiet has been idle 35 s, busy 15 s
        closed = poll_until(source, lambda: source.counters.idle_closed == 1)
        assert [rx.closed for rx in closed] == [True] and closed[0].lines == []
        assert source.counters.truncated == 1
        quiet.settimeout(5)
        assert quiet.recv(10) == b""  # the daemon hung up
        notice = source.take_notices()
        assert notice == [{"event": "idle_closed", "origin": closed[0].origin, "idle_s": 35.0}]
        busy.sendall(b"b,1.02,0,0,1\n")  # the busy connection still works
        poll_until(source, lambda: source.counters.lines == 3)
        quiet.close()
        busy.close()
    finally:
        source.close()


def test_zero_idle_timeout_never_closes():
    clock = FakeClock()
    source = TcpSource("127.0.0.1", 0, max_line=200, options=TcpOptions(idle_timeout_s=0.0),
                       clock=clock)
    try:
        sock = socket.create_connection(source.address, timeout=5)
        poll_until(source, lambda: source.counters.connections == 1)
        clock.now += 1e9
        assert source.poll(0.05) == []
        sock.sendall(b"1.0,0,0,1\n")
        rx = poll_until(source, lambda: source.counters.lines == 1)
        assert [r.closed for r in rx] == [False] and source.counters.idle_closed == 0
        sock.close()
    finally:
        source.close()


@pytest.mark.parametrize("bad", [dict(max_connections=0), dict(max_per_address=0),
                                 dict(idle_timeout_s=-1.0), dict(idle_timeout_s=float("nan"))])
def test_options_are_validated(bad):
    with pytest.raises(ValueError):
        TcpOptions(**bad)
