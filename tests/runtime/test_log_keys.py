"""docs/RUNTIME.md's table of log-line keys is what the daemon really writes: its `start`,
`stats` and `final` lines are parsed from the docs and compared with real runs."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from har_runtime.cli import main
from har_runtime.daemon.sources import open_source
from test_daemon_network import Running
from test_stream_mock import golden_bundle

DOC = Path(__file__).resolve().parents[2] / "docs" / "RUNTIME.md"
SECTION = "### Logs, counters and exit"
NAME = re.compile(r"`([a-z][a-z0-9_]*)`")


def _tables():
    """({event: keys cell}, {counter group: counters cell}) from the docs' log section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start:text.index("\n### ", start + len(SECTION))]
    events, groups = {}, {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("event", "group") or cells[0].startswith("-"):
            continue
        if len(cells) == 3:
            events[cells[0].strip("`")] = cells[2]
        elif len(cells) == 2:
            groups[cells[0]] = cells[1]
    return events, groups


def documented(event):
    """(keys always on the line, [keys of each conditional clause]) of one event row."""
    clauses = _tables()[0][event].split(";")
    return set(NAME.findall(clauses[0])), [(c, set(NAME.findall(c))) for c in clauses[1:]]


def counters():
    return set().union(*(NAME.findall(cell) for cell in _tables()[1].values()))


def _extras(clauses, marker):
    return set().union(*(keys for text, keys in clauses if marker in text))


def test_the_docs_table_parses_into_the_expected_rows():
    events, groups = _tables()
    assert set(events) == {"start", "stats", "reload", "reload_failed", "connection_refused",
                           "idle_closed", "warning", "final"}
    assert len(groups) == 6 and {"bytes", "samples_in", "changes"} <= counters()


def test_file_daemon_start_stats_and_final_lines_have_the_documented_keys(tmp_path):
    t = np.arange(600) / 50.0
    acc = np.stack([np.sin(t), np.cos(t), 0.1 * t], axis=1)
    lines = ["not,a,line"] + [f"{ti:.2f},{a:.4f},{b:.4f},{c:.4f},0,0,0"
                              for ti, (a, b, c) in zip(t, acc)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "serve.toml").write_text("stats_interval = 0.000001\n")
    result = CliRunner().invoke(main, [
        "serve", str(golden_bundle()), "--source", f"file:{tmp_path / 'in.csv'}",
        "--sink", f"file:{tmp_path / 'out.jsonl'}", "--config", str(tmp_path / "serve.toml")])
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in result.stderr.splitlines()]
    by_event = {}
    for entry in log:
        by_event.setdefault(entry["event"], []).append(set(entry))

    start, _ = documented("start")
    assert by_event["start"] == [start]
    base, clauses = documented("stats")
    stats = base | counters()
    full = stats.union(*(keys for _, keys in clauses))
    assert by_event["stats"] and all(stats <= keys <= full for keys in by_event["stats"])
    assert any(keys == full for keys in by_event["stats"])  # this run meets every condition
    final_only = documented("final")[0] - {"stats"}
    [final] = by_event["final"]
    # The latencies cover the last interval, which may have classified nothing at exit.
    assert stats | final_only <= final <= full | final_only


@pytest.mark.parametrize("uri", ["tcp:127.0.0.1:0", "udp:127.0.0.1:0"])
def test_network_start_line_has_the_documented_keys(uri):
    source = open_source(uri, 1024)
    port = source.address[1]
    log = Running(source).stop()
    base, clauses = documented("start")
    assert log[0]["event"] == "start"
    assert set(log[0]) == base | _extras(clauses, f"`{uri.split(':')[0]}:`")
    assert log[0]["port"] == port != 0
