"""MQTT connection settings and the paho-mqtt client both MQTT ends of the daemon share.

URL: ``mqtt://[USER[:PASS]@]HOST[:PORT]/TOPIC[?OPTIONS]`` (``mqtts://`` = ``tls=1``, port 8883).
The topic is everything after the first ``/`` up to ``?`` (``#`` needs no escaping). Options
shared by source and sink: ``version=5|3.1.1``, ``username``, ``password``, ``tls=0|1``,
``ca=PATH``, ``cert=PATH``, ``key=PATH``, ``insecure=0|1`` (skip the host-name check),
``transport=tcp|websockets``, ``ws_path=/mqtt``, ``client_id``, ``keepalive`` (s), ``qos=0|1``.
The rest belong to the end that reads them (`MqttSource`, `MqttSink`). paho-mqtt 2.x is the
optional extra ``mqtt`` (``pip install 'paho-mqtt>=2.0,<3'``). The client reconnects by itself
(1-30 s back-off) whenever the broker goes away.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qsl, unquote

#: How long opening waits for the broker's CONNACK.
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
#: How long closing waits for the broker to confirm it processed what we sent.
FLUSH_S = 5.0
#: Session expiry asked of an MQTT 5 broker for a persistent session (a fixed client_id).
SESSION_EXPIRY_S = 3600
VERSIONS = ("5", "3.1.1")
COMMON_OPTIONS = ("version", "username", "password", "tls", "ca", "cert", "key", "insecure",
                  "transport", "ws_path", "client_id", "keepalive", "qos")


class MqttError(Exception):
    """A broker that cannot be reached or refuses us, or a bad mqtt:// URL (one line)."""


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to connect; `extra` holds the options of the end using them."""

    host: str
    port: int
    topic: str
    version: str = "5"
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    insecure: bool = False
    transport: str = "tcp"
    ws_path: str = "/mqtt"
    client_id: str = ""
    keepalive: int = 30
    qos: int = 1
    extra: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, uri: str, allowed: Tuple[str, ...] = ()) -> "MqttSettings":
        """Settings from an mqtt:// or mqtts:// URL; `allowed` names the extra options."""
        scheme, sep, rest = uri.partition("://")
        if scheme not in ("mqtt", "mqtts") or not sep:
            raise MqttError(f"{uri!r}: expected mqtt://HOST[:PORT]/TOPIC")
        rest, _, query = rest.partition("?")
        netloc, _, topic = rest.partition("/")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = set(options) - set(COMMON_OPTIONS) - set(allowed)
        if unknown:
            raise MqttError(f"unknown mqtt option(s) {sorted(unknown)}; known: "
                            f"{', '.join(COMMON_OPTIONS + allowed)}")
        userinfo, _, hostport = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        host, port = _host_port(hostport, 8883 if scheme == "mqtts" else 1883, uri)
        topic = unquote(topic)
        if not topic:
            raise MqttError(f"{uri!r}: no topic after HOST[:PORT]/")
        try:
            return cls._build(host, port, topic, scheme == "mqtts", unquote(user) or None,
                              unquote(password) if userinfo else None, options, allowed)
        except ValueError as exc:
            raise MqttError(f"{uri!r}: {exc}") from None

    @classmethod
    def _build(cls, host, port, topic, tls, user, password, options, allowed) -> "MqttSettings":
        common = {k: v for k, v in options.items() if k in COMMON_OPTIONS}
        settings = cls(host, port, topic,
                       version=common.get("version", "5"),
                       username=common.get("username", user),
                       password=common.get("password", password),
                       tls=_flag(common.get("tls"), tls),
                       ca=common.get("ca"), cert=common.get("cert"), key=common.get("key"),
                       insecure=_flag(common.get("insecure"), False),
                       transport=common.get("transport", "tcp"),
                       ws_path=common.get("ws_path", "/mqtt"),
                       client_id=common.get("client_id", ""),
                       keepalive=int(common.get("keepalive", 30)),
                       qos=int(common.get("qos", 1)),
                       extra={k: v for k, v in options.items() if k in allowed})
        if settings.version not in VERSIONS:
            raise ValueError(f"version must be one of {list(VERSIONS)}")
        if settings.transport not in ("tcp", "websockets"):
            raise ValueError("transport must be tcp or websockets")
        if settings.qos not in (0, 1) or not 5 <= settings.keepalive <= 3600:
            raise ValueError("qos must be 0 or 1 and keepalive 5-3600 s")
        return settings

    def describe(self) -> Dict[str, Any]:
        """What to log at start-up (no password)."""
        return {"host": self.host, "port": self.port, "topic": self.topic,
                "version": self.version, "tls": self.tls, "transport": self.transport,
                "client_id": self.client_id, "qos": self.qos}


def _flag(value: Optional[str], default: bool) -> bool:
    if value is None:
        return default
    if value not in ("0", "1", "true", "false"):
        raise ValueError(f"a flag must be 0 or 1, got {value!r}")
    return value in ("1", "true")


def _host_port(hostport: str, default_port: int, uri: str) -> Tuple[str, int]:
    if hostport.startswith("["):  # [IPv6]:PORT
        host, _, port = hostport[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise MqttError(f"{uri!r}: no broker host")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise MqttError(f"{uri!r}: port {port!r} is not 1-65535")
    return host, int(port) if port else default_port


class Connection:
    """A paho client on its own network thread, connected once before `__init__` returns.

    `on_connect(client, session_present)` runs on every (re)connection on paho's thread, as
    does `on_message(client, msg)`; given one, the caller acknowledges each QoS 1 message
    itself (`ack`).
    `connects` and `disconnects` count connection changes. A persistent session is asked for
    when `client_id` is set (MQTT 5: clean start off, SESSION_EXPIRY_S; 3.1.1: clean session
    off).
    """

    def __init__(self, settings: MqttSettings, on_connect: Callable[[Any, bool], None],
                 will: Optional[Tuple[str, str]] = None,
                 on_message: Optional[Callable[[Any, Any], None]] = None, max_queued: int = 0):
        mqtt = _paho()
        self.settings = settings
        self.connects = 0
        self.disconnects = 0
        self.last_error = ""
        self._on_connect = on_connect
        self._first = threading.Event()
        self._refused: Optional[str] = None
        v5 = settings.version == "5"
        persistent = bool(settings.client_id)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, transport=settings.transport,
            clean_session=None if v5 else not persistent, manual_ack=on_message is not None)
        if on_message is not None:  # before connecting: a persistent session delivers at once
            self.client.on_message = lambda client, userdata, msg: on_message(client, msg)
        self.client.max_queued_messages_set(max_queued)  # 0: unbounded
        self._configure(mqtt, will)
        self._connect(mqtt, v5, persistent)

    def _configure(self, mqtt, will: Optional[Tuple[str, str]]) -> None:
        s, client = self.settings, self.client
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            try:
                client.tls_set(ca_certs=s.ca, certfile=s.cert, keyfile=s.key)
            except (OSError, ValueError) as exc:
                raise MqttError(f"mqtt TLS set-up failed: {exc}") from None
            client.tls_insecure_set(s.insecure)
        if s.transport == "websockets":
            client.ws_set_options(path=s.ws_path)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.suppress_exceptions = True  # a failing callback must not end the network thread
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected

    def _connect(self, mqtt, v5: bool, persistent: bool) -> None:
        s = self.settings
        extra: Dict[str, Any] = {}
        if v5:
            from paho.mqtt.packettypes import PacketTypes  # noqa: PLC0415 - optional extra
            from paho.mqtt.properties import Properties  # noqa: PLC0415
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
            extra = {"clean_start": not persistent, "properties": props}
        where = f"mqtt broker {s.host}:{s.port}"
        try:
            self.client.connect(s.host, s.port, s.keepalive, **extra)
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {where}: {exc}") from None
        self.client.loop_start()
        if not self._first.wait(CONNECT_TIMEOUT_S) or self._refused:
            self.close()
            raise MqttError(f"{where} refused the connection: {self._refused or 'no answer'}")

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = str(reason_code)
            if not self._first.is_set():
                self._refused = str(reason_code)
                self._first.set()
            return
        self.connects += 1
        self._on_connect(client, bool(flags.session_present))
        self._first.set()

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnects += 1
        self.last_error = str(reason_code)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (QoS 1: the broker may now forget it)."""
        ack(self.client, mid, qos)

    @property
    def connected(self) -> bool:
        """Whether the client holds a live connection now."""
        return self.client.is_connected()

    def close(self) -> None:
        """Make sure the broker has processed what we sent, then disconnect and stop the
        network thread.

        The barrier matters: closing a socket with unread data (messages the broker already
        sent) resets the connection, and the broker then discards what it had not read yet,
        such as our last acknowledgements. An UNSUBSCRIBE is answered only after every packet
        before it was processed, so its UNSUBACK proves the acknowledgements arrived.
        """
        if self.client.is_connected():
            done = threading.Event()
            self.client.on_unsubscribe = lambda *args: done.set()
            rc, _ = self.client.unsubscribe(f"har-edge/barrier/{id(self)}")
            if rc == 0:
                done.wait(FLUSH_S)
        self.client.disconnect()
        self.client.loop_stop()


def ack(client, mid: int, qos: int) -> None:
    """Acknowledge message `mid` on `client` (nothing to do for QoS 0)."""
    if qos:
        client.ack(mid, qos)


def _paho():
    try:
        import paho.mqtt.client as mqtt  # noqa: PLC0415 - optional extra
    except ImportError:
        raise MqttError("MQTT needs paho-mqtt 2.x: pip install 'paho-mqtt>=2.0,<3'") from None
    return mqtt
