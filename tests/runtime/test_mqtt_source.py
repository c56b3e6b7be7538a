"""The mqtt:// source against a real mosquitto on 127.0.0.1 (mock classifier)."""
import json
import shutil
import subprocess

import pytest

from mqtt_helpers import Client, mqtt, wait_until
from har_runtime.daemon.mqtt import MqttError, MqttSettings
from har_runtime.daemon.mqtt_source import MqttSource, Shard
from har_runtime.daemon.sources import SourceError, open_source
from test_daemon_engine import check_accounting, csv_lines, device_data, expected, got
from test_daemon_network import Running
from test_http_source import sensor_logger_bodies


def publish_lines(client, topic, lines, per_message=50):
    for a in range(0, len(lines), per_message):
        client.publish(topic, b"".join(lines[a:a + per_message]))


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_lines_on_per_device_topics_give_the_batch_path_predictions(broker, version):
    run = Running(open_source(broker.url("fleet/in/+", version=version), 4096))
    pub = Client(broker)
    data = {"wrist": device_data(1), "pi-2": device_data(2)}
    for device, (t, x) in data.items():
        publish_lines(pub, f"fleet/in/{device}", csv_lines(None, t, x))
    want = {d: expected(d, t, x) for d, (t, x) in data.items()}
    run.wait_for(sum(map(len, want.values())))
    final = run.stop()[-1]
    for device in data:
        assert got(run.sink.events, device) == want[device]
    assert final["messages"] == final["fed_messages"] == 2 * 20
    assert (final["connects"], final["held"], final["dropped_messages"]) == (1, 0, 0)
    check_accounting(final)
    pub.close()


def test_sensor_logger_json_on_a_fixed_topic_names_the_device_in_the_payload(broker):
    run = Running(open_source(broker.url("sensor-logger"), 4096))
    pub = Client(broker)
    t, x = device_data(3)
    bodies, seen_t = sensor_logger_bodies("c0ffee-phone", t, x)
    for b in bodies:
        pub.publish("sensor-logger", json.dumps(b))
    want = expected("c0ffee-phone", seen_t, x)
    run.wait_for(len(want))
    final = run.stop()[-1]
    assert got(run.sink.events, "c0ffee-phone") == want
    assert final["ignored"] == len(bodies)  # one location reading per body
    check_accounting(final)
    pub.close()


def test_bad_messages_are_counted_and_the_other_device_keeps_being_served(broker):
    run = Running(open_source(broker.url("in/#", max_body=100_000), 4096))
    pub = Client(broker)
    t, x = device_data(4)
    lines = csv_lines(None, t, x)
    pub.publish("in/p", b"1,0,0,1\n" * 20_000)                    # over max_body
    pub.publish("in/bad device", b"1,0,0,1\n")                      # topic is no device id
    named = {"deviceId": "named", "payload": [
        {"name": "totalacceleration", "time": 10**18, "values": {"x": 0, "y": 0, "z": 1}}]}
    pub.publish("in/bad device", json.dumps(named))                 # the body names its device
    pub.publish("in/p", json.dumps({"deviceId": "p", "payload": 5}))  # unusable body
    pub.publish("in/p", b"{broken json\nnot,a,sample\n1,nan,0,0\n")   # lines: 2 malformed
    pub.publish("in/p", json.dumps({"payload": [{"name": "gyroscope"}]}))  # a bad reading
    publish_lines(pub, "in/good", lines)
    want = expected("good", t, x)
    run.wait_for(len(want))
    final = run.stop()[-1]
    assert got(run.sink.events, "good") == want
    assert (final["bad_topic"], final["bad_messages"], final["malformed"], final["nonfinite"],
            final["bad_entries"], final["too_large"]) == (1, 1, 2, 1, 1, 1)
    assert final["per_device"]["named"]["samples_in"] == 1
    assert final["messages"] == final["fed_messages"] + final["bad_topic"] + \
        final["bad_messages"] + final["other_shard"]
    check_accounting(final)
    pub.close()


def test_the_source_survives_a_broker_restart_and_carries_on(broker):
    run = Running(open_source(broker.url("in/+"), 4096))
    t, x = device_data(5, seconds=40.0)
    lines = csv_lines(None, t, x)
    half = len(lines) // 2
    pub = Client(broker)
    publish_lines(pub, "in/dev", lines[:half])
    wait_until(lambda: run.server.engine.counters.samples == half, "the first half")
    pub.close()
    broker.stop()
    broker.start()
    wait_until(lambda: run.source._conn.connects == 2, "the source to reconnect")
    wait_until(lambda: run.source._conn.client.is_connected(), "the connection")
    pub = Client(broker)
    # The restarted broker forgot the subscription; the source subscribes again on connect.
    until_subscribed(pub, run, "in/probe")
    publish_lines(pub, "in/dev", lines[half:])
    want = expected("dev", t, x)
    run.wait_for(len(want))
    final = run.stop()[-1]
    assert got(run.sink.events, "dev") == want
    assert (final["connects"], final["disconnects"]) == (2, 1)
    pub.close()


def until_subscribed(pub, run, topic):
    """Publish comment lines on `topic` until the daemon counts one (it is subscribed)."""
    def probe():
        pub.publish(topic, b"# probe\n")
        return run.server.engine.counters.skipped > 0
    wait_until(probe, "the subscription")


def test_shards_split_the_devices_each_exactly_once_and_in_order(broker):
    runs = [Running(open_source(broker.url("fleet/+", shard=f"{k}/2"), 4096)) for k in range(2)]
    pub = Client(broker)
    devices = [f"dev-{i}" for i in range(8)]
    data = {d: device_data(10 + i, seconds=8.0) for i, d in enumerate(devices)}
    for d, (t, x) in data.items():
        publish_lines(pub, f"fleet/{d}", csv_lines(None, t, x))
    owners = {d: [k for k in range(2) if Shard(k, 2).owns(d)] for d in devices}
    assert all(len(o) == 1 for o in owners.values()) and {o[0] for o in owners.values()} == {0, 1}
    for k, run in enumerate(runs):
        run.wait_for(sum(len(expected(d, *data[d])) for d in devices if owners[d] == [k]))
    finals = [run.stop()[-1] for run in runs]
    for d in devices:
        k = owners[d][0]
        assert got(runs[k].sink.events, d) == expected(d, *data[d])
        assert got(runs[1 - k].sink.events, d) == []
    assert sum(f["other_shard"] for f in finals) == sum(f["fed_messages"] for f in finals)
    pub.close()


def test_a_persistent_session_gets_what_was_published_while_the_daemon_was_down(broker):
    url = broker.url("in/+", client_id="har-shard-0", version="3.1.1")
    MqttSource.open(url, 4096).close()  # the session (and its subscription) now exists
    pub = Client(broker)
    t, x = device_data(6)
    publish_lines(pub, "in/late", csv_lines(None, t, x))
    run = Running(MqttSource.open(url, 4096))
    want = expected("late", t, x)
    run.wait_for(len(want))
    run.stop()
    assert got(run.sink.events, "late") == want
    pub.close()


def _numbers(source, until, more_polls=0):
    """Poll `source` until `until(numbers)` holds (then `more_polls` more): the first field of
    each message's first line, in arrival order."""
    got = []
    wait_until(lambda: got.extend(int(rx.lines[0].split(b",")[0]) for rx in source.poll(0.1))
               or until(got), "messages")
    for _ in range(more_polls):
        got.extend(int(rx.lines[0].split(b",")[0]) for rx in source.poll(0.1))
    return got


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_a_restarted_shard_gets_each_message_exactly_once(broker, version):
    url = broker.url("in/+", client_id="har-restart", version=version)
    MqttSource.open(url, 4096).close()
    pub = Client(broker)
    for i in range(400):
        pub.client.publish("in/d", f"{i},0,0,1\n".encode(), qos=1)
    wait_until(lambda: not pub.client.want_write(), "the publisher")
    first = MqttSource.open(url, 4096)
    taken = _numbers(first, lambda got: len(got) >= 60)
    first.close()  # what it returned counts as fed: acknowledged now, never delivered again
    second = MqttSource.open(url, 4096)
    rest = _numbers(second, lambda got: len(got) >= 400 - len(taken), more_polls=3)
    second.close()
    assert not set(taken) & set(rest)
    assert sorted(taken + rest) == list(range(400))
    assert taken + [i for i in rest if i > taken[-1]] == list(range(400))  # broker order kept
    pub.close()


def test_username_and_password(make_broker):
    broker = make_broker(anonymous=False, passwords={"phone": "s3cret"})
    with pytest.raises(SourceError, match="refused"):
        open_source(broker.url("in/+", username="phone", password="wrong"), 4096)
    url = f"mqtt://phone:s3cret@127.0.0.1:{broker.port}/in/+"
    run = Running(open_source(url, 4096))
    pub = Client(broker, auth=("phone", "s3cret"))
    t, x = device_data(7, seconds=4.0)
    publish_lines(pub, "in/auth", csv_lines(None, t, x))
    run.wait_for(len(expected("auth", t, x)))
    run.stop()
    pub.close()


def _certificates(folder):
    subj = "/CN=127.0.0.1"
    ca, key, csr, crt = (folder / n for n in ("ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=har-test-ca", "-keyout", str(folder / "ca.key"), "-out", str(ca))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", str(key),
        "-out", str(csr))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey",
        str(folder / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
        "-out", str(crt))
    return ca, key, crt


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")
def test_tls_with_a_private_ca(make_broker, tmp_path):
    ca, key, crt = _certificates(tmp_path)
    from conftest import free_port
    port = free_port()
    broker = make_broker(listeners=f"listener {port} 127.0.0.1\ncafile {ca}\n"
                                   f"certfile {crt}\nkeyfile {key}\n")
    with pytest.raises(SourceError, match="cannot connect"):  # no CA: verification fails
        open_source(f"mqtts://127.0.0.1:{port}/in/+", 4096)
    run = Running(open_source(f"mqtts://127.0.0.1:{port}/in/+?ca={ca}", 4096))
    assert run.source.describe()["tls"] is True
    pub = Client(broker)  # plain listener of the same broker
    t, x = device_data(8, seconds=4.0)
    publish_lines(pub, "in/tls", csv_lines(None, t, x))
    run.wait_for(len(expected("tls", t, x)))
    run.stop()
    pub.close()


def test_websockets_transport(make_broker):
    from conftest import free_port
    port = free_port()
    broker = make_broker(listeners=f"listener {port} 127.0.0.1\nprotocol websockets\n")
    run = Running(open_source(f"mqtt://127.0.0.1:{port}/in/+?transport=websockets", 4096))
    pub = Client(broker)
    t, x = device_data(9, seconds=4.0)
    publish_lines(pub, "in/ws", csv_lines(None, t, x))
    run.wait_for(len(expected("ws", t, x)))
    run.stop()
    pub.close()


@pytest.mark.parametrize("url, reason", [
    ("mqtt://127.0.0.1:1883", "no topic"),
    ("mqtt://:1883/t", "no broker host"),
    ("mqtt://h:99999/t", "not 1-65535"),
    ("mqtt://h/t?version=4", "version"),
    ("mqtt://h/t?qos=2", "qos"),
    ("mqtt://h/t?colour=red", "unknown mqtt option"),
    ("mqtt://h/t?tls=maybe", "flag"),
])
def test_bad_urls_are_one_line_errors(url, reason):
    with pytest.raises(MqttError, match=reason):
        MqttSettings.parse(url, ("shard",))


def test_url_parts_and_shard_rule():
    s = MqttSettings.parse("mqtts://u%40x:p%3Aw@broker.lan/sensor-logger/#?shard=1/3", ("shard",))
    assert (s.host, s.port, s.topic, s.tls) == ("broker.lan", 8883, "sensor-logger/#", True)
    assert (s.username, s.password, s.extra) == ("u@x", "p:w", {"shard": "1/3"})
    with pytest.raises(ValueError, match="K/N"):
        Shard.parse("2/2")
    assert sum(Shard(k, 3).owns("phone-1") for k in range(3)) == 1
    assert mqtt.MQTTv5  # paho-mqtt 2.x is what the daemon runs on
