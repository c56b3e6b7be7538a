"""`mqtt://HOST[:PORT]/TOPIC`: samples from an MQTT broker (Sensor Logger JSON or sample lines).

A message is a Sensor Logger / plain JSON body (`sensor_logger`) or one or more daemon sample
lines. Its device: the body's deviceId/device, else (and for lines without their own id) the
topic level matched by the subscription's first wildcard (``phones/+`` -> ``phones/alice`` is
``alice``), else ``mqtt``. A topic level that is no valid device id drops a message that
needs it (`bad_topic`).

Delivery: QoS 1 (``qos=1``, the default) messages are acknowledged only after the engine was
fed them (the next poll), so with a persistent session (a fixed ``client_id``) a message in
flight when the daemon stops is delivered again to its successor. Paho's thread hands messages
over through a bounded queue and waits while it is full (back-pressure on the broker).

Scale-out: ``shard=K/N`` keeps only the messages whose device d has crc32(d) % N == K, so N
daemons subscribed to the same topic with shards 0..N-1 each own a disjoint set of devices and
see each device's messages in the broker's order. Other shards' messages are counted
(`other_shard`) and acknowledged.
"""
from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Tuple

from har_runtime.daemon.http_source import DEFAULT_MAX_BODY
from har_runtime.daemon.lines import DEVICE_ID, LineSplitter
from har_runtime.daemon.mqtt import Connection, MqttError, MqttSettings, ack
from har_runtime.daemon.sensor_logger import (BodyCounters, BodyError, DecodeOptions,
                                              decode_body, is_body, parse_json)
from har_runtime.daemon.sources import Received, Source, SourceError

SOURCE_OPTIONS = ("shard", "acc", "pair_tolerance_s", "max_body")
#: Messages held between paho's thread and the loop (at most MAX_PENDING * max_body bytes).
MAX_PENDING = 256
#: Messages turned into lines per poll.
POLL_BATCH = 256
#: How long paho's thread waits for room before it drops a message (counted).
BLOCK_S = 10.0
#: Device of messages that name none.
DEFAULT_DEVICE = "mqtt"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: owns device d when crc32(d) % count == index."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``K/N`` with 0 <= K < N."""
        k, slash, n = text.partition("/")
        if not (slash and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
            raise ValueError(f"shard must be K/N with 0 <= K < N, got {text!r}")
        return cls(int(k), int(n))

    def owns(self, device: str) -> bool:
        """Whether this shard handles `device` (stable across processes and machines)."""
        return self.count == 1 or zlib.crc32(device.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class MqttCounters(BodyCounters):
    """Body counts plus what became of each message the loop took from paho's thread:

    messages == fed_messages + other_shard + bad_messages + bad_topic

    `held`: messages waiting for the loop at its last poll (at the stop: not acknowledged, so a
    persistent session delivers them again). Paho's thread counts the messages it never
    queues: `too_large` (over max_body bytes) and `dropped_messages` (no room for 10 s).
    """

    messages: int = 0
    fed_messages: int = 0
    other_shard: int = 0
    bad_messages: int = 0
    bad_topic: int = 0
    held: int = 0
    too_large: int = 0
    dropped_messages: int = 0
    connects: int = 0
    disconnects: int = 0


#: (topic, payload, mid, qos, arrival) of a received message.
Message = Tuple[str, bytes, int, int, float]


class MqttSource(Source):
    """Subscribe to `settings.topic`; hand messages to the loop as `Received` batches."""

    def __init__(self, settings: MqttSettings, max_line: int):
        super().__init__(max_line)
        extra = settings.extra
        try:
            self.shard = Shard.parse(extra.get("shard", "0/1"))
            self.decode = DecodeOptions(extra.get("acc", DecodeOptions.acc),
                                        float(extra.get("pair_tolerance_s",
                                                        DecodeOptions.pair_tolerance_s)))
            self.max_body = int(extra.get("max_body", DEFAULT_MAX_BODY))
        except ValueError as exc:
            raise SourceError(f"mqtt source option: {exc}") from None
        self.settings = settings
        self.counters = MqttCounters()
        self._filter = settings.topic.split("/")
        self._ready = threading.Condition()
        self._queue: Deque[Message] = deque()
        self._fed: List[Tuple[int, int]] = []
        self._closing = False
        try:
            self._conn = Connection(settings, self._subscribe, on_message=self._message)
        except MqttError as exc:
            raise SourceError(str(exc)) from None

    @classmethod
    def open(cls, uri: str, max_line: int) -> "MqttSource":
        """A source from its URL (docs/RUNTIME.md); raises SourceError."""
        try:
            return cls(MqttSettings.parse(uri, SOURCE_OPTIONS), max_line)
        except MqttError as exc:
            raise SourceError(str(exc)) from None

    def describe(self) -> Dict[str, Any]:
        return {"source": "mqtt", **self.settings.describe(), "shard": str(self.shard),
                "acc": self.decode.acc}

    def _subscribe(self, client, session_present: bool) -> None:
        client.subscribe(self.settings.topic, self.settings.qos)

    def _message(self, client, msg) -> None:
        """On paho's thread: queue the message, waiting while the queue is full."""
        if len(msg.payload) > self.max_body:
            with self._ready:
                self.counters.too_large += 1
            ack(client, msg.mid, msg.qos)
            return
        item = (msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.perf_counter())
        deadline = time.monotonic() + BLOCK_S
        with self._ready:
            while len(self._queue) >= MAX_PENDING and not self._closing:
                if not self._ready.wait(deadline - time.monotonic()):
                    self.counters.dropped_messages += 1
                    ack(client, msg.mid, msg.qos)
                    return
            self._queue.append(item)
            self._ready.notify_all()

    def poll(self, timeout: float) -> List[Received]:
        """Acknowledge what the loop fed since the last poll; turn waiting messages into lines."""
        with self._ready:
            fed, self._fed = self._fed, []
            if not self._queue:
                self._ready.wait(timeout)
            taken = [self._queue.popleft() for _ in range(min(POLL_BATCH, len(self._queue)))]
            self.counters.held = len(self._queue)
            self._ready.notify_all()
            self.counters.connects = self._conn.connects
            self.counters.disconnects = self._conn.disconnects
        for mid, qos in fed:
            self._conn.ack(mid, qos)
        self.counters.messages += len(taken)
        out = [rx for rx in map(self._received, taken) if rx is not None]
        self._fed = [(mid, qos) for _, _, mid, qos, _ in taken]
        return out

    def _received(self, message: Message) -> Optional[Received]:
        topic, payload, _, _, arrival = message
        ok, device = self._topic_device(topic)
        if payload.lstrip()[:1] == b"{":
            try:
                obj = parse_json(payload)
            except BodyError:
                obj = None  # several JSON lines, or a broken one: the line parser counts it
            if is_body(obj):  # a body naming its device needs no valid topic device
                return self._body(obj, device if ok else None, payload, arrival)
        if not ok:
            self.counters.bad_topic += 1
            self.counters.last_rejected = f"topic {topic[:60]!r} names no valid device id"
            return None
        origin = device or DEFAULT_DEVICE
        if not self.shard.owns(origin):
            self.counters.other_shard += 1
            return None
        self.counters.fed_messages += 1
        return self._lines(LineSplitter(self.max_line), payload, origin, at_end=True)

    def _body(self, obj: Any, device: Optional[str], payload: bytes,
              arrival: float) -> Optional[Received]:
        try:
            decoded = decode_body(obj, self.decode, default_device=device)
        except BodyError as exc:
            self.counters.bad_messages += 1
            self.counters.last_rejected = str(exc)
            return None
        if not self.shard.owns(decoded.device):
            self.counters.other_shard += 1
            return None
        self.counters.fed_messages += 1
        self.counters.bytes += len(payload)
        self.counters.add(decoded)
        return Received(decoded.lines, decoded.device, arrival) if decoded.lines else None

    def _topic_device(self, topic: str) -> Tuple[bool, Optional[str]]:
        """(valid, device): the levels matched by the filter's first wildcard, if it has one."""
        for i, level in enumerate(self._filter):
            if level in ("+", "#"):
                levels = topic.split("/")
                device = "/".join(levels[i:]) if level == "#" else levels[i]
                return bool(DEVICE_ID.fullmatch(device)), device
        return True, None

    def close(self) -> None:
        with self._ready:
            self._closing = True
            self._queue.clear()  # unacknowledged: a persistent session delivers them again
            self._ready.notify_all()
        for mid, qos in self._fed:  # the loop fed the last poll's messages before closing us
            self._conn.ack(mid, qos)
        self._fed = []
        self._conn.close()
