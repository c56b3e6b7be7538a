"""The mqtt:// sink against a real mosquitto: events, retained activity, Home Assistant
discovery, availability (clean stop and last will), broker restarts."""
import io
import json
import subprocess
import sys

import numpy as np

from mqtt_helpers import Client, wait_until
from har_runtime.contract.results import ActivityChange
from har_runtime.daemon.engine import Engine
from har_runtime.daemon.mqtt_sink import discovery_config, object_id
from har_runtime.daemon.server import Server
from har_runtime.daemon.sinks import MemorySink, Sink, open_sink
from har_runtime.daemon.sources import MemorySource
from test_daemon_engine import chunks, csv_lines, device_data, mock_model


class Tee(Sink):
    def __init__(self, *sinks):
        self.sinks = sinks

    def write(self, events):
        for s in self.sinks:
            s.write(events)

    def stats(self):
        return self.sinks[-1].stats()

    def close(self):
        for s in self.sinks:
            s.close()


def retained(broker, topic="#"):
    """The retained messages a fresh subscriber gets: {topic: payload}."""
    client = Client(broker).subscribe(topic)
    client.publish("test/marker", b"end")  # delivered after the retained ones
    wait_until(lambda: client.received("test/marker"), "the retained messages")
    client.close()
    return {t: p.decode() for t, p, r in client.received() if r}


def test_events_activity_and_discovery_for_every_device(broker):
    watcher = Client(broker).subscribe("har/#")
    devices = ["wrist", "pi:3/a"]
    lines = [line for i, d in enumerate(devices) for line in csv_lines(d, *device_data(i))]
    memory = MemorySink()
    sink = open_sink(broker.url("har", node="kitchen-pi"))
    log = io.StringIO()
    Server(MemorySource(chunks(lines, np.random.default_rng(0))), Engine(mock_model),
           Tee(memory, sink), stats_interval=0, log=log).run()
    final = json.loads(log.getvalue().splitlines()[-1])
    assert final["sink_dropped"] == 0 and final["sink_published"] > len(memory.events)
    state = retained(broker)
    assert state["har/status/kitchen-pi"] == "offline"  # clean stop
    for device in devices:
        obj = object_id(device)
        assert "/" not in obj and ":" not in obj
        config = json.loads(state[f"homeassistant/sensor/har/{obj}/config"])
        assert config == discovery_config(device, "har", "kitchen-pi")
        assert config["state_topic"] == f"har/{obj}/activity"
        assert config["availability_topic"] == "har/status/kitchen-pi"
        last = [e for e in memory.events if isinstance(e, ActivityChange) and e.device == device]
        assert json.loads(state[f"har/{obj}/activity"])["activity"] == last[-1].current
        wait_until(lambda: len(watcher.received(f"har/{obj}/event")) ==
                   sum(e.device == device for e in memory.events), "every event")
        sent = [json.loads(p) for _, p, _ in watcher.received(f"har/{obj}/event")]
        assert sent == [e.to_dict() for e in memory.events if e.device == device]
    assert object_id("pi:3/a") != object_id("pi_3_a")
    watcher.close()


KEEP_RUNNING = """
import sys, time
from har_runtime.daemon.sinks import open_sink
open_sink(sys.argv[1])
print("ready", flush=True)
time.sleep(60)
"""


def test_the_last_will_marks_a_killed_daemon_offline(broker):
    watcher = Client(broker).subscribe("har/status/#")
    proc = subprocess.Popen([sys.executable, "-c", KEEP_RUNNING, broker.url("har", node="n9")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_until(lambda: [p for _, p, _ in watcher.received()] == [b"online"], "online")
        proc.kill()
        proc.wait()
        wait_until(lambda: [p for _, p, _ in watcher.received()] == [b"online", b"offline"],
                   "the last will")
    finally:
        proc.kill()
        proc.wait()
    assert retained(broker)["har/status/n9"] == "offline"
    watcher.close()


def change(device, current, previous="unknown"):
    return ActivityChange(device, 1.0, previous, current, 0.9)


def test_after_a_broker_restart_the_sink_republishes_and_counts_what_it_could_not_send(broker):
    sink = open_sink(broker.url("har", node="n1", qos="0"))
    sink.write([change("phone", "walking")])
    wait_until(lambda: "har/phone/activity" in retained(broker), "the first activity")
    broker.stop()
    wait_until(lambda: not sink._conn.connected, "the sink to notice")
    sink.write([change("phone", "laying", "walking")])  # QoS 0 event: dropped, counted
    stats = sink.stats()
    assert stats["sink_dropped"] == 1 and stats["sink_queued_offline"] == 1  # retained: QoS 1
    broker.start()  # a fresh broker: no retained messages survived
    wait_until(lambda: sink.stats()["sink_connects"] == 2, "the sink to reconnect")
    state = {}
    wait_until(lambda: state.update(retained(broker)) or len(state) == 3, "republished state")
    assert state["har/status/n1"] == "online"
    assert json.loads(state["har/phone/activity"])["activity"] == "laying"
    assert "homeassistant/sensor/har/phone/config" in state
    sink.close()
