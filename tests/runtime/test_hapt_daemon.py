"""A real HAPT test subject through the daemon on loopback TCP and UDP, with a real TFLite bundle.

Needs the HAPT dataset package (the train extra), so it runs in the full venv and skips in the
TF-free one. The stream is jittered ±20 % around 50 Hz, so resampling is exercised for real.
"""
import socket
import time

import numpy as np
import pytest

from har_runtime.contract.results import Prediction
from har_runtime.daemon.model import BundleModelLoader
from har_runtime.daemon.sources import UdpSource
from har_runtime.daemon.tcp_source import TcpSource
from har_runtime.stream import StreamClassifier
from test_daemon_engine import check_accounting
from test_daemon_network import Running
from test_stream_mock import golden_bundle

hapt = pytest.importorskip("har_train.data.hapt")
SECONDS = 60.0


@pytest.fixture(scope="module")
def subject2():
    try:
        recs = hapt.load_hapt()
    except Exception as exc:  # the package is an optional extra
        pytest.skip(f"HAPT data unavailable: {exc}")
    rec = next(r for r in recs if r.subject == 2)
    n = int(SECONDS * rec.rate_hz)
    rng = np.random.default_rng(2)
    t = 1.7e9 + (np.arange(n) + rng.uniform(-0.2, 0.2, n)) / rec.rate_hz
    return t, rec.acc[:n]


def _lines(device, t, x):
    return [f"{device},{ti!r},{a!r},{b!r},{c!r}\n".encode() for ti, (a, b, c) in zip(t, x)]


def _offline(t, x):
    loader = BundleModelLoader(golden_bundle())
    model = loader()
    stream = StreamClassifier(model.spec, model.classifier, model.smoothing, device="s2")
    return [(round(p.t_end, 6), p.label) for p in stream.classify_recording(t, x)]


def _served(events, device):
    return [(round(e.t_end, 6), e.label) for e in events
            if isinstance(e, Prediction) and e.device == device]




@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_hapt_subject_over_loopback_gives_offline_predictions(subject2, kind):
    t, x = subject2
    expected = _offline(t, x)
    lines = _lines("s2", t, x)

    def send(address):
        if kind == "tcp":
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(b"".join(lines))
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(0, len(lines), 20):
                sock.sendto(b"".join(lines[i:i + 20]), address)
                time.sleep(0.002)  # stay inside the loopback receive buffer

    source_type = TcpSource if kind == "tcp" else UdpSource
    source = source_type("127.0.0.1", 0, max_line=200)
    run = Running(source, loader=BundleModelLoader(golden_bundle()))
    send(run.source.address)
    run.wait_for(len(expected))
    final = run.stop()[-1]
    assert len(expected) > 20
    assert _served(run.sink.events, "s2") == expected  # one prediction per complete window
    assert final["samples_in"] == len(t)
    check_accounting(final)
