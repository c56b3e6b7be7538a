"""Scale-out through a real broker: aggregate samples/s of 1 and 2 `har-runtime serve` processes
sharing one fleet over mosquitto on loopback, and a process restart with its accounting.

    python -m scripts.fleet_bench                       # print the section
    python -m scripts.fleet_bench --write   # and put it at the end of docs/BENCHMARKS.md

Each run starts its own mosquitto (127.0.0.1, a free port, unlimited session queues), creates
the shards' persistent sessions, publishes the whole fleet (DEVICES devices, CSV lines on
fleet/in/<device>, QoS 1) and only then starts the daemons, so the figure is the daemons'
consumption rate, not the publisher's. A daemon counts as done at the first stats line (every
STATS_S) holding all samples of its shard; the rate is all samples over (last done - first
start line). The restart run stops the single daemon (SIGTERM) half-way and starts it again
with the same client id; the broker delivers the rest, including what the first process held
unacknowledged.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import click
import numpy as np

from har_runtime.daemon.mqtt_source import MqttSource, Shard
from scripts.bench.report import FLEET_MARK

TOPIC = "fleet/in"
STATS_S = 0.05
DEADLINE_S = 300.0
MARK_START, MARK_END = FLEET_MARK, "<!-- fleet_bench:end -->"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A private broker for one run (the bench's own config, stopped on exit)."""

    def __init__(self, folder: Path):
        self.port = free_port()
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nmax_queued_messages 0\nuser root\n")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("mosquitto did not start")

    def url(self, client_id: str, shard: Shard) -> str:
        """The daemon's --source for one shard with a persistent session."""
        return (f"mqtt://127.0.0.1:{self.port}/{TOPIC}/+?client_id={client_id}"
                f"&shard={shard}")

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        self.process.terminate()
        self.process.wait(10)


def fleet_messages(devices: int, seconds: float, per_message: int) -> Dict[str, List[bytes]]:
    """Per device: CSV line payloads `t,ax,ay,az` (g, 50 Hz, a noisy walking-like signal)."""
    rng = np.random.default_rng(0)
    n = int(seconds * 50)
    out = {}
    for d in range(devices):
        t = 1_700_000_000.0 + np.arange(n) / 50.0
        x = np.column_stack([np.sin(2 * np.pi * 1.8 * t), np.cos(2 * np.pi * 1.8 * t),
                             np.ones(n)]) * 0.3 + rng.normal(0, 0.05, (n, 3))
        x[:, 2] += 1.0
        lines = [f"{ti!r},{a:.5f},{b:.5f},{c:.5f}\n" for ti, (a, b, c) in zip(t, x)]
        out[f"dev-{d:03d}"] = ["".join(lines[a:a + per_message]).encode()
                               for a in range(0, n, per_message)]
    return out


def publish(broker: Mosquitto, fleet: Dict[str, List[bytes]]) -> None:
    """Publish every payload of `fleet` at QoS 1 and wait until the broker has them all."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415 - the mqtt extra
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = [client.publish(f"{TOPIC}/{device}", payload, qos=1)
             for device, payloads in fleet.items() for payload in payloads]
    for info in infos:
        info.wait_for_publish(DEADLINE_S)
    client.disconnect()
    client.loop_stop()


class Daemon:
    """One `har-runtime serve` process; a thread reads its JSON log lines as they come."""

    def __init__(self, bundle: Path, url: str, events: Path):
        self.lines: List[tuple] = []
        settings = events.with_suffix(".toml")
        settings.write_text(f"stats_interval = {STATS_S}\n")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "har_runtime.cli", "serve", str(bundle), "--source", url,
             "--sink", f"file:{events}", "--config", str(settings), "--emit", "changes"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            # Only the daemon's own lines: an interpreter build may print a C++ INFO line.
            if line.startswith("{"):
                self.lines.append((time.monotonic(), json.loads(line)))

    def first(self, event: str, predicate=lambda c: True) -> Optional[float]:
        """When the first log line of `event` satisfying `predicate` arrived."""
        return next((t for t, c in list(self.lines) if c["event"] == event and predicate(c)),
                    None)

    def stop(self) -> dict:
        """SIGTERM, wait, and return the final counters."""
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(60) != 0:
            raise SystemExit(f"daemon exited {self.process.returncode}")
        self._reader.join(10)
        return self.lines[-1][1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition, what: str) -> None:
    """Poll `condition` until it holds; give up after DEADLINE_S."""
    end = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.01)


def shard_samples(fleet: Dict[str, List[bytes]], shard: Shard) -> int:
    """How many samples of `fleet` belong to `shard`."""
    return sum(p.count(b"\n") for d, ps in fleet.items() if shard.owns(d) for p in ps)


def scale_run(bundle: Path, fleet, processes: int, folder: Path) -> dict:
    """All of `fleet` through `processes` shards; the aggregate rate and the final counters."""
    broker = Mosquitto(folder)
    try:
        shards = [Shard(k, processes) for k in range(processes)]
        urls = [broker.url(f"bench-{processes}-{s.index}", s) for s in shards]
        for url in urls:
            MqttSource.open(url, 4096).close()  # the persistent sessions, subscribed
        publish(broker, fleet)
        daemons = [Daemon(bundle, url, folder / f"events-{processes}-{k}.jsonl")
                   for k, url in enumerate(urls)]
        totals = [shard_samples(fleet, s) for s in shards]
        for daemon, total in zip(daemons, totals):
            wait_for(lambda: daemon.first("stats", lambda c: c["samples"] >= total), "a shard")
        start = min(d.first("start") for d in daemons)
        done = max(d.first("stats", lambda c, n=n: c["samples"] >= n)
                   for d, n in zip(daemons, totals))
        cpu = sum(cpu_seconds(d.process.pid) for d in daemons)
        broker_cpu = cpu_seconds(broker.process.pid)
        finals = [d.stop() for d in daemons]
    finally:
        broker.stop()
    samples = sum(f["samples"] for f in finals)
    return {"processes": processes, "samples": samples, "seconds": done - start,
            "rate": samples / (done - start), "cpu": cpu, "broker_cpu": broker_cpu,
            "finals": finals}


def restart_run(bundle: Path, fleet, folder: Path) -> dict:
    """One shard stopped half-way and started again; the counters of both lifetimes."""
    broker = Mosquitto(folder)
    try:
        url = broker.url("bench-restart", Shard())
        MqttSource.open(url, 4096).close()
        publish(broker, fleet)
        total = shard_samples(fleet, Shard())
        first = Daemon(bundle, url, folder / "events-restart-1.jsonl")
        wait_for(lambda: first.first("stats", lambda c: c["samples"] >= total // 2), "half")
        one = first.stop()
        second = Daemon(bundle, url, folder / "events-restart-2.jsonl")
        wait_for(lambda: second.first("stats",
                                      lambda c: c["samples"] + one["samples"] >= total), "rest")
        two = second.stop()
    finally:
        broker.stop()
    return {"published": total, "lifetimes": [one, two]}


ACCOUNT = ("messages", "fed_messages", "held", "samples", "malformed", "samples_in",
           "nonfinite", "out_of_order", "frames", "advanced", "buffered", "discarded",
           "windows", "predictions")


def section(scale: List[dict], restart: dict, params: dict) -> str:
    """The markdown section for docs/BENCHMARKS.md."""
    base = scale[0]["rate"]
    rows = [f"| {r['processes']} | {r['samples']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} | "
            f"{r['rate'] / base:.2f} | {r['cpu']:.2f} | {r['samples'] / r['cpu']:,.0f} | "
            f"{r['broker_cpu']:.2f} |" for r in scale]
    return "\n".join([
        MARK_START, "## Scale-out through MQTT (scripts/fleet_bench.py)", "",
        f"`python -m scripts.fleet_bench --write` on {params['cpus']} CPU cores (load average "
        f"{params['load']:.2f} at the start; other work shares them), mosquitto "
        f"{params['mosquitto']} on 127.0.0.1, bundle `{params['bundle']}`, {params['devices']} "
        f"devices x {params['seconds']:.0f} s at 50 Hz, {params['per_message']} CSV lines per "
        "QoS 1 message, published before the daemons start (the figure is their consumption "
        "rate). Each process subscribes to the whole fleet and keeps its `shard=K/N` "
        "(crc32 of the device id), so the broker sends every message to every process.", "",
        "| processes | samples | seconds | samples/s | vs 1 | daemon CPU s | samples per daemon "
        "CPU s | broker CPU s |", "|---|---|---|---|---|---|---|---|", *rows, "",
        "CPU seconds are user + system time of the daemons (including start-up and the bundle "
        "load) and of mosquitto over the whole run (publishing included). The daemons and the "
        "broker share these cores with each other and with other work, so the wall-clock rate "
        "shows contention, not the scale-out a second machine (or free cores) gives; samples per "
        "daemon CPU second shows what each extra process costs (each receives the whole "
        "fleet).", "", *restart_lines(restart), MARK_END, ""])


def restart_lines(restart: dict) -> List[str]:
    """The restart part of the section: both lifetimes' counters and the accounting."""
    one, two = restart["lifetimes"]
    acc = [f"| {k} | {one[k]:,} | {two[k]:,} | {one[k] + two[k]:,} |" for k in ACCOUNT]
    windowed = one["advanced"] + two["advanced"]
    held = sum(lt["buffered"] + lt["discarded"] for lt in restart["lifetimes"])
    dropped = sum(lt["malformed"] + lt["nonfinite"] + lt["out_of_order"]
                  for lt in restart["lifetimes"])
    missing = restart["published"] - one["samples"] - two["samples"]
    verdict = "none twice, none lost" if missing == 0 else f"{missing:+,} unaccounted"
    return [
        "Restart: one process stopped (SIGTERM) half-way and started again with the same "
        "client id (persistent session); what it held unacknowledged was delivered again to "
        "its successor.", "",
        "| counter | first process | second process | sum |", "|---|---|---|---|", *acc, "",
        f"Published {restart['published']:,} samples; the two lifetimes took "
        f"{one['samples'] + two['samples']:,} of them ({verdict}). Frames: "
        f"{windowed:,} windowed (advanced) + {held:,} buffered or discarded at a stop = "
        f"{one['frames'] + two['frames']:,} frames from "
        f"{one['samples_in'] + two['samples_in']:,} samples; reported dropped "
        f"(malformed + nonfinite + out_of_order): {dropped}."]


def write_section(path: Path, text: str) -> None:
    """Replace this script's section of `path`, or append it at the end."""
    old = path.read_text()
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        old = head.rstrip("\n") + "\n" + rest.split(MARK_END, 1)[1].lstrip("\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


@click.command()
@click.option("--bundle", type=click.Path(exists=True, path_type=Path),
              default=Path("tests/data_golden/bundle"), show_default=True)
@click.option("--devices", type=click.IntRange(1), default=32, show_default=True)
@click.option("--seconds", type=click.FloatRange(1.0), default=300.0, show_default=True,
              help="Seconds of 50 Hz data per device.")
@click.option("--per-message", type=click.IntRange(1), default=50, show_default=True)
@click.option("--write", is_flag=True, help="Put the section at the end of docs/BENCHMARKS.md.")
def main(bundle: Path, devices: int, seconds: float, per_message: int, write: bool) -> None:
    """Aggregate samples/s with 1 and 2 daemons over mosquitto, and a restart's accounting."""
    fleet = fleet_messages(devices, seconds, per_message)
    version = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"],
                             capture_output=True, text=True).stdout.split("\n")[0].split()[2]
    params = {"cpus": os.cpu_count(), "load": os.getloadavg()[0], "mosquitto": version,
              "bundle": str(bundle), "devices": devices, "seconds": seconds,
              "per_message": per_message}
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        folder = Path(tmp)
        scale = [scale_run(bundle, fleet, n, folder) for n in (1, 2)]
        restart = restart_run(bundle, fleet, folder)
    text = section(scale, restart, params)
    click.echo(text)
    if write:
        write_section(Path("docs/BENCHMARKS.md"), text)


if __name__ == "__main__":
    main()
