"""Test clients of the real broker: a publisher and a collecting subscriber (paho-mqtt)."""
import threading
import time

import pytest

mqtt = pytest.importorskip("paho.mqtt.client", reason="the MQTT tests need paho-mqtt")

DEADLINE_S = 15.0


def wait_until(predicate, what):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Client:
    """A paho client on the broker: `publish` waits for the broker's acknowledgement;
    `subscribe` collects (topic, payload, retain) into `messages`."""

    def __init__(self, broker, client_id="", version=mqtt.MQTTv5, auth=None, **connect):
        self.messages = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=version)
        self.client.on_message = self._on_message
        if auth:
            self.client.username_pw_set(*auth)
        self._subacks = []
        self.client.on_subscribe = lambda client, userdata, mid, codes, props: \
            self._subacks.append(mid)
        self.client.connect("127.0.0.1", broker.port, **connect)
        self.client.loop_start()
        wait_until(self.client.is_connected, "the test client to connect")

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def publish(self, topic, payload, qos=1, retain=False):
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(DEADLINE_S)

    def subscribe(self, topic, qos=1):
        result, mid = self.client.subscribe(topic, qos)
        assert result == 0
        wait_until(lambda: mid in self._subacks, f"the subscription to {topic}")
        return self

    def received(self, topic=None):
        with self._lock:
            return [m for m in self.messages if topic is None or m[0] == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
