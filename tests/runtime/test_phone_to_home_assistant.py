"""docs/RUNTIME.md's walk-through, end to end: a phone pushing Sensor Logger bodies over HTTP to
`har-runtime serve` (the golden bundle, a real TFLite model) publishing to a real mosquitto,
where Home Assistant would find the device by MQTT discovery."""
import http.client
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from mqtt_helpers import Client, wait_until
from test_daemon_engine import check_accounting

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"
DEVICE = "5a1d0c9e-3f7b-4c2a-9d1e-0b6f8a2c4e17"  # Sensor Logger's deviceId is a UUID


def phone_bodies(seconds=12, rate=50):
    """One body per second: total acceleration (a phone lying still, m/s2), gyroscope, and a
    location reading the daemon ignores."""
    rng = np.random.default_rng(7)
    start = 1_700_000_000_000_000_000
    bodies = []
    for s in range(seconds):
        payload = []
        for i in range(rate):
            ns = start + (s * rate + i) * 20_000_000
            acc = [0.05, 0.1, 9.80665] + rng.normal(0, 0.02, 3)
            payload.append({"name": "totalacceleration", "time": ns,
                            "values": dict(zip("xyz", acc.tolist()))})
            payload.append({"name": "gyroscope", "time": ns,
                            "values": dict(zip("xyz", rng.normal(0, 0.01, 3).tolist()))})
        payload.append({"name": "location", "time": start + s * 10**9,
                        "values": {"latitude": 51.5, "longitude": -0.12}})
        bodies.append({"messageId": s, "sessionId": "walk-1", "deviceId": DEVICE,
                       "payload": payload})
    return bodies


def _first_json_line(stream) -> str:
    # tflite-runtime's C++ may print "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
    # when the model loads (docs/RUNTIME.md): every line the daemon itself writes is JSON.
    for line in stream:
        if line.startswith("{"):
            return line
    raise AssertionError("the daemon wrote no JSON log line")


def test_phone_pushes_reach_home_assistant_through_mqtt(broker, tmp_path):
    watcher = Client(broker).subscribe("#")
    (tmp_path / "serve.toml").write_text("stats_interval = 0\n")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "har_runtime.cli", "serve", str(GOLDEN),
         "--source", "http:127.0.0.1:0", "--sink", broker.url("har", node="living-room"),
         "--acc-unit", "m/s2", "--config", str(tmp_path / "serve.toml")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        start = json.loads(_first_json_line(daemon.stderr))
        assert (start["event"], start["source"], start["host"]) == ("start", "http", "127.0.0.1")
        conn = http.client.HTTPConnection("127.0.0.1", start["port"], timeout=30)
        for body in phone_bodies():
            conn.request("POST", "/push", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            assert json.loads(response.read())["samples"] == 50
        windows = 1 + (12 * 50 - 128) // 64
        events = f"har/{DEVICE}/event"
        wait_until(lambda: sum(json.loads(p)["type"] == "prediction"
                               for _, p, _ in watcher.received(events)) == windows,
                   "a prediction per window")
        config = json.loads(watcher.received(f"homeassistant/sensor/har/{DEVICE}/config")[0][1])
        assert config["state_topic"] == f"har/{DEVICE}/activity"
        assert config["device"]["name"] == DEVICE
        assert watcher.received("har/status/living-room")[0][1] == b"online"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        final = json.loads([line for line in daemon.stderr.read().splitlines()
                            if line.startswith("{")][-1])
    finally:
        daemon.kill()
        daemon.wait()
    assert (final["event"], final["predictions"], final["samples"]) == ("final", windows, 600)
    assert (final["companions"], final["ignored"], final["sink_dropped"]) == (600, 12, 0)
    check_accounting(final)
    wait_until(lambda: watcher.received("har/status/living-room")[-1][1] == b"offline",
               "offline after the stop")
    watcher.close()
