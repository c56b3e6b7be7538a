"""scripts/fleet_bench.py: its section writer, and a tiny run through a real mosquitto."""
import shutil

import pytest
from click.testing import CliRunner

from scripts import fleet_bench


def test_the_section_is_appended_once_and_then_replaced(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nother engineer's text\n")
    fleet_bench.write_section(doc, f"{fleet_bench.MARK_START}\nfirst\n{fleet_bench.MARK_END}\n")
    fleet_bench.write_section(doc, f"{fleet_bench.MARK_START}\nsecond\n{fleet_bench.MARK_END}\n")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nother engineer's text\n\n")
    assert "first" not in text and text.count(fleet_bench.MARK_START) == 1
    assert text.rstrip().endswith(fleet_bench.MARK_END)


@pytest.mark.skipif(shutil.which("mosquitto") is None and not shutil.which("/usr/sbin/mosquitto"),
                    reason="the mosquitto binary is missing (apt-get install mosquitto)")
def test_a_tiny_fleet_is_accounted_for_exactly():
    pytest.importorskip("paho.mqtt.client")
    result = CliRunner().invoke(fleet_bench.main, ["--devices", "3", "--seconds", "6"])
    assert result.exit_code == 0, result.output
    assert "| 2 | 900 |" in result.output and "(none twice, none lost)" in result.output
    assert "reported dropped (malformed + nonfinite + out_of_order): 0." in result.output
