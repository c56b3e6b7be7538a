"""`--sink mqtt://HOST[:PORT]/BASE`: events to MQTT, with Home Assistant discovery.

Topics (OBJ is the device id with every character outside ``A-Za-z0-9_-`` replaced by ``_``,
plus ``_`` and its crc32 in hex when anything was replaced, so distinct ids stay distinct):

  BASE/OBJ/event          every event as JSON (the `to_json()` line), not retained
  BASE/OBJ/activity       retained {"activity", "previous", "confidence", "t"} at each change
  BASE/status/NODE        retained "online"; "offline" at a clean stop and, as the last will,
                          when the connection dies
  PREFIX/sensor/har/OBJ/config   retained Home Assistant discovery of the device's activity
                          sensor (availability: NODE's status), sent at a device's first event

Options: ``node`` (default: this host's name), ``discovery`` (PREFIX, default
``homeassistant``; empty: none), ``max_queued`` (QoS 1 messages held while the broker is away,
default 10000). After a reconnect, the status, every known discovery config and the last
activity of each device are published again (a restarted broker may have lost them).
Undeliverable messages are counted (`sink_dropped`), never silently lost.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import zlib
from typing import Any, Dict, Sequence, Set

from har_runtime.contract.results import ActivityChange
from har_runtime.daemon.mqtt import FLUSH_S, Connection, MqttError, MqttSettings, _paho
from har_runtime.daemon.sinks import Sink, SinkError
from har_runtime.stream import Event

SINK_OPTIONS = ("node", "discovery", "max_queued")
DEFAULT_DISCOVERY = "homeassistant"
DEFAULT_MAX_QUEUED = 10000
ONLINE, OFFLINE = "online", "offline"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def object_id(device: str) -> str:
    """A topic level and Home Assistant object id for `device` (distinct ids stay distinct)."""
    safe = _UNSAFE.sub("_", device)
    return safe if safe == device else f"{safe}_{zlib.crc32(device.encode()):08x}"


def discovery_config(device: str, base: str, node: str) -> Dict[str, Any]:
    """Home Assistant MQTT discovery payload of `device`'s activity sensor."""
    obj = object_id(device)
    state = f"{base}/{obj}/activity"
    return {"name": "Activity", "unique_id": f"har_edge_{obj}_activity",
            "state_topic": state, "value_template": "{{ value_json.activity }}",
            "json_attributes_topic": state, "icon": "mdi:run",
            "availability_topic": f"{base}/status/{node}",
            "payload_available": ONLINE, "payload_not_available": OFFLINE,
            "device": {"identifiers": [f"har_edge_{obj}"], "name": device,
                       "manufacturer": "har-edge", "model": "activity recognition"},
            "origin": {"name": "har-edge"}}


class MqttSink(Sink):
    """Publish events, retained activities, availability and discovery (docs above)."""

    def __init__(self, settings: MqttSettings):
        extra = settings.extra
        self.settings = settings
        self.base = settings.topic.rstrip("/")
        self.node = object_id(extra.get("node") or socket.gethostname() or "har")
        self.discovery = extra.get("discovery", DEFAULT_DISCOVERY).rstrip("/")
        try:
            max_queued = int(extra.get("max_queued", DEFAULT_MAX_QUEUED))
        except ValueError:
            raise SinkError("mqtt sink option max_queued must be a number") from None
        self.status_topic = f"{self.base}/status/{self.node}"
        self.published = 0
        self.dropped = 0
        self.queued_offline = 0
        self._lock = threading.Lock()
        # topic -> payload to publish again on reconnect (two per device ever seen)
        self._retained: Dict[str, str] = {}
        self._discovered: Set[str] = set()
        self._no_conn = _paho().MQTT_ERR_NO_CONN
        try:
            self._conn = Connection(settings, self._online, will=(self.status_topic, OFFLINE),
                                    max_queued=max_queued)
        except MqttError as exc:
            raise SinkError(str(exc)) from None

    @classmethod
    def open(cls, uri: str) -> "MqttSink":
        """A sink from its URL; raises SinkError."""
        try:
            return cls(MqttSettings.parse(uri, SINK_OPTIONS))
        except MqttError as exc:
            raise SinkError(str(exc)) from None

    def _online(self, client, session_present: bool) -> None:
        """On every (re)connection: availability, then what a broker restart may have lost."""
        self._publish(self.status_topic, ONLINE, retain=True, client=client)
        with self._lock:
            retained = list(self._retained.items())
        for topic, payload in retained:
            self._publish(topic, payload, retain=True, client=client)

    def write(self, events: Sequence[Event]) -> None:
        for e in events:
            obj = object_id(e.device)
            if self.discovery and obj not in self._discovered:
                self._discovered.add(obj)
                self._retain(f"{self.discovery}/sensor/har/{obj}/config",
                             json.dumps(discovery_config(e.device, self.base, self.node)))
            self._publish(f"{self.base}/{obj}/event", e.to_json())
            if isinstance(e, ActivityChange):
                self._retain(f"{self.base}/{obj}/activity", json.dumps(
                    {"activity": e.current, "previous": e.previous,
                     "confidence": e.confidence, "t": e.t}))

    def _retain(self, topic: str, payload: str) -> None:
        with self._lock:
            self._retained[topic] = payload
        self._publish(topic, payload, retain=True)

    def _publish(self, topic: str, payload: str, retain: bool = False, client=None) -> None:
        qos = 1 if retain else self.settings.qos  # retained state must survive a reconnect
        info = (client or self._conn.client).publish(topic, payload, qos=qos, retain=retain)
        rc = info.rc
        with self._lock:
            if rc == 0:
                self.published += 1
            elif rc == self._no_conn and qos:
                self.queued_offline += 1  # paho keeps it and sends it after reconnecting
            else:
                self.dropped += 1

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {"sink_published": self.published, "sink_queued_offline": self.queued_offline,
                    "sink_dropped": self.dropped, "sink_connects": self._conn.connects,
                    "sink_disconnects": self._conn.disconnects}

    def close(self) -> None:
        """Mark this node offline (retained), then disconnect."""
        if self._conn.connected:
            info = self._conn.client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            # With the in-flight window full of events, paho queues this message behind them;
            # the close barrier does not wait for queued publishes, so wait for this one.
            try:
                info.wait_for_publish(FLUSH_S)
            except (RuntimeError, ValueError):  # not sent: the last will says offline
                pass
        self._conn.close()

