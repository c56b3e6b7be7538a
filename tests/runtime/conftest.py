"""A real mosquitto broker on 127.0.0.1 for the MQTT tests (skipped when mosquitto is missing)."""
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0


def mosquitto_binary():
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto with a generated config; `stop()`/`start()` keep the port (broker restarts)."""

    def __init__(self, folder: Path, listeners: str = "", anonymous=True, passwords=None):
        self.folder, self.port = folder, free_port()
        lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {str(anonymous).lower()}",
                 "persistence false", "max_queued_messages 100000", "user root",
                 f"log_dest file {folder / 'mosquitto.log'}"]
        if passwords:
            pw = folder / "passwords"
            for i, (user, password) in enumerate(passwords.items()):
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) +
                               [str(pw), user, password], check=True, capture_output=True)
            lines.append(f"password_file {pw}")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n" + listeners)
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ports = [int(p) for p in re.findall(r"^listener (\d+)", self.config.read_text(), re.M)]
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end and self.process.poll() is None:
            try:
                for port in ports:  # every listener, websockets included, accepts
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        log = (self.folder / "mosquitto.log")
        raise RuntimeError(f"mosquitto did not start: {log.read_text() if log.exists() else ''}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(START_TIMEOUT_S)

    def url(self, topic, **options):
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"mqtt://127.0.0.1:{self.port}/{topic}" + (f"?{query}" if query else "")


@pytest.fixture
def make_broker(tmp_path):
    """Factory of brokers (Broker's arguments); every one is stopped after the test."""
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is missing (apt-get install mosquitto; "
                    "scripts/run_tests.sh installs it when run as root)")
    made = []

    def make(**kwargs):
        folder = tmp_path / f"broker{len(made)}"
        folder.mkdir()
        made.append(Broker(folder, **kwargs))
        return made[-1]

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def broker(make_broker):
    """One anonymous broker on a free loopback port."""
    return make_broker()
