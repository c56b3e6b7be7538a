"""The http: source: real HTTP requests to the real server on 127.0.0.1 (mock classifier)."""
import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest

from har_runtime.daemon.http_source import MAX_PENDING, HttpSource
from har_runtime.daemon.sources import Received, SourceError, open_source
from test_daemon_engine import check_accounting, device_data, expected, got
from test_daemon_network import Running


def sensor_logger_bodies(device, t, x, per_body=50, message_id=0):
    """Sensor Logger bodies of `per_body` totalacceleration readings, and the times the daemon
    will see (ns on the wire, so the seconds are what ns * 1e-9 gives)."""
    ns = np.round(np.asarray(t) * 1e9).astype(np.int64)
    bodies = []
    for a in range(0, len(ns), per_body):
        payload = [{"name": "totalacceleration", "time": int(n), "values": dict(zip("xyz", v))}
                   for n, v in zip(ns[a:a + per_body].tolist(), x[a:a + per_body].tolist())]
        payload.append({"name": "location", "time": int(ns[a]), "values": {"latitude": 51.5}})
        bodies.append({"messageId": message_id + len(bodies), "sessionId": "s1",
                       "deviceId": device, "payload": payload})
    return bodies, ns * 1e-9


def post(conn, data, path="/data"):
    conn.request("POST", path, data if isinstance(data, bytes) else json.dumps(data).encode(),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.fixture
def running():
    run = Running(HttpSource("127.0.0.1", 0, 4096))
    yield run
    if run.thread.is_alive():
        run.stop()


def connect(run):
    return http.client.HTTPConnection(*run.source.address, timeout=10)


def test_sensor_logger_pushes_give_the_batch_path_predictions(running):
    t, x = device_data(1)
    bodies, seen_t = sensor_logger_bodies("7f3e-phone", t, x)
    conn = connect(running)  # one keep-alive connection, as the app uses
    for b in bodies:
        status, reply = post(conn, b)
        assert status == 200 and reply["samples"] == len(b["payload"]) - 1
        assert reply["ignored"] == 1
    want = expected("7f3e-phone", seen_t, x)
    running.wait_for(len(want))
    final = running.stop()[-1]
    assert got(running.sink.events, "7f3e-phone") == want
    assert (final["accepted_bodies"], final["requests"], final["connections"]) == \
        (len(bodies), len(bodies), 1)
    assert final["entries"] == final["lines"] + final["ignored"] + final["bad_entries"]
    check_accounting(final)


def test_a_200_means_the_engine_already_has_the_samples(running):
    t, x = device_data(2, seconds=3.0)
    bodies, _ = sensor_logger_bodies("p1", t, x, per_body=len(t))
    status, _ = post(connect(running), bodies[0])
    assert status == 200
    assert running.server.engine.counters.samples == len(t)  # counted before the reply


def raw_request(address, head: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head)
        return sock.recv(65536)


def test_bad_requests_get_reasons_and_the_other_device_is_still_served(running):
    t, x = device_data(3)
    bodies, seen_t = sensor_logger_bodies("good", t, x)
    conn = connect(running)
    bad = [(b"{nope", 400, "valid JSON"),
           ({"deviceId": "bad device!", "payload": []}, 400, "deviceId"),
           ({"deviceId": "x", "payload": "readings"}, 400, "list of readings"),
           ({"sessionId": "s"}, 400, "'payload'"),
           (b"[]", 400, "JSON object")]
    for i, b in enumerate(bodies):
        if i < len(bad):
            data, want_status, reason = bad[i]
            status, reply = post(conn, data)
            assert status == want_status and reason in reply["error"]
        assert post(conn, b)[0] == 200
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    response.read()
    assert b" 411 " in raw_request(running.source.address, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    too_big = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n".encode()
    assert b" 413 " in raw_request(running.source.address, too_big)
    want = expected("good", seen_t, x)
    running.wait_for(len(want))
    final = running.stop()[-1]
    assert got(running.sink.events, "good") == want
    assert (final["rejected_bodies"], final["too_large"], final["bad_method"]) == (6, 1, 1)
    assert final["requests"] == final["accepted_bodies"] + final["rejected_bodies"] + \
        final["too_large"] + final["busy"] + final["bad_method"]
    check_accounting(final)


def test_bad_readings_inside_a_good_body_are_counted_and_nan_is_nonfinite(running):
    t, x = device_data(4, seconds=2.0)
    bodies, _ = sensor_logger_bodies("p2", t, x, per_body=len(t))
    payload = bodies[0]["payload"]
    payload[5]["values"]["x"] = "oops"
    payload[6]["values"]["y"] = float("nan")
    del payload[7]["time"]
    status, reply = post(connect(running), json.dumps(bodies[0]).encode())  # NaN on the wire
    assert status == 200 and reply["bad_entries"] == 2 and "last_error" in reply
    final = running.stop()[-1]
    assert (final["bad_entries"], final["nonfinite"], final["samples"]) == (2, 1, len(t) - 2)
    assert final["last_rejected"]


def test_a_body_the_loop_never_takes_is_withdrawn_so_a_retry_cannot_double_it():
    source = HttpSource("127.0.0.1", 0, 4096)
    try:
        assert source.submit(Received([b"p,1,0,0,1\n"], "http:test", 0.0), timeout=0.01) is False
        assert source.poll(0.0) == []  # withdrawn: the engine never sees it
    finally:
        source.close()


def test_bodies_waiting_at_the_stop_are_refused_at_once():
    source = HttpSource("127.0.0.1", 0, 4096)
    results = []
    waiter = threading.Thread(target=lambda: results.append(
        source.submit(Received([b"p,1,0,0,1\n"], "http:test", 0.0), timeout=60)))
    waiter.start()
    deadline = time.monotonic() + 15
    while not source._queue and time.monotonic() < deadline:
        time.sleep(0.01)
    source.close()
    waiter.join(15)
    assert results == [False]  # answered 503 (not after its 60 s), never fed


def test_a_full_queue_refuses_at_once_and_a_busy_post_gets_503():
    source = HttpSource("127.0.0.1", 0, 4096)
    rx = Received([b"p,1,0,0,1\n"], "http:test", 0.0)
    waiting = [threading.Thread(target=source.submit, args=(rx, 60)) for _ in range(MAX_PENDING)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 15
    while len(source._queue) < MAX_PENDING and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert source.submit(rx, timeout=60) is False  # no wait: the queue is full
        conn = http.client.HTTPConnection(*source.address, timeout=10)
        status, reply = post(conn, {"device": "p", "samples": [[1, 0, 0, 1]]})
        assert (status, reply["error"]) == (503, "busy; retry")
        assert source.counters.busy == 1 and source.counters.accepted_bodies == 0
    finally:
        source.close()
        for thread in waiting:
            thread.join(15)


def test_plain_body_and_options():
    source = open_source("http:0?acc=accelerometer%2Bgravity&max_body=100", 4096)
    try:
        assert source.address[0] == "127.0.0.1"  # loopback unless a host is given
        assert source.describe()["acc"] == "accelerometer+gravity"
        conn = http.client.HTTPConnection(*source.address, timeout=10)
        conn.request("POST", "/", b"x" * 101)
        assert conn.getresponse().status == 413
    finally:
        source.close()
    with pytest.raises(SourceError, match="unknown http option"):
        open_source("http:0?accel=1", 4096)
    with pytest.raises(SourceError, match="acc must be one of"):
        open_source("http:0?acc=magnetometer", 4096)


def test_plain_json_body_is_served(running):
    t, x = device_data(5, seconds=6.0)
    rows = [[ti] + xi for ti, xi in zip(t.tolist(), x.tolist())]
    status, reply = post(connect(running), {"device": "pi-7", "samples": rows})
    assert status == 200 and reply["samples"] == len(rows)
    want = expected("pi-7", t, x)
    running.wait_for(len(want))
    running.stop()
    assert got(running.sink.events, "pi-7") == want
