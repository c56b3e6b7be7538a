"""Deployment tiers: budgets, the optional bundle.json `tier` (written, read back, old bundles
without it), the export's tier check and the bench verdict. No TensorFlow needed."""
import json
import shutil
from pathlib import Path

import pytest

from har_runtime.benchmark import BenchResult, tier_lines
from har_runtime.bundle import BundleError, load_bundle
from har_runtime.contract.tiers import TIERS, get_tier

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"


def _bundle_with(tmp_path, change):
    root = Path(shutil.copytree(GOLDEN, tmp_path / "bundle"))
    path = root / "bundle.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return root


def test_the_tiers_and_their_budgets():
    assert TIERS["mcu"].max_int8_bytes == 32 * 1024 and TIERS["mcu"].max_window_ms is None
    assert TIERS["pi"].max_int8_bytes == 256 * 1024 and TIERS["pi"].max_window_ms == 2.0
    pi = get_tier("pi")
    assert pi.size_problem(256 * 1024) is None
    assert "over the pi tier's 256 KiB" in pi.size_problem(256 * 1024 + 1)
    assert pi.latency_problem(2.0) is None and "2 ms budget" in pi.latency_problem(2.01)
    assert TIERS["mcu"].latency_problem(50.0) is None  # not measurable here
    assert get_tier(None) is None
    with pytest.raises(ValueError, match="unknown tier"):
        get_tier("npu")


def test_old_bundles_without_a_tier_still_load():
    assert load_bundle(GOLDEN).tier is None


@pytest.mark.parametrize("tier", ["mcu", "pi", "npu_v2"])
def test_a_tier_is_read_back_even_one_this_runtime_does_not_know(tmp_path, tier):
    root = _bundle_with(tmp_path, lambda doc: doc.update(tier=tier))
    assert load_bundle(root).tier == tier


@pytest.mark.parametrize("bad", [3, ["pi"], "PI", "x" * 40, "../pi", ""])
def test_a_malformed_tier_is_refused(tmp_path, bad):
    root = _bundle_with(tmp_path, lambda doc: doc.update(tier=bad))
    with pytest.raises(BundleError, match="tier"):
        load_bundle(root)


def _result(variant, p50):
    return BenchResult(variant=variant, deployable=True, size_bytes=1, interpreter="tflite",
                       threads=1, p50_ms=p50, p99_ms=p50, throughput_wps=1.0, batch=1)


def test_bench_judges_the_int8_latency_against_the_pi_budget(tmp_path):
    pi = load_bundle(_bundle_with(tmp_path, lambda doc: doc.update(tier="pi")))
    lines = tier_lines(pi, [_result("float32", 9.0), _result("int8", 0.5)])
    assert lines == ["tier pi: p50 0.500 ms per window is within the 2 ms budget (tflite x1)"]
    assert "over the pi tier's 2 ms budget" in tier_lines(pi, [_result("int8", 2.5)])[0]
    assert tier_lines(load_bundle(GOLDEN), [_result("int8", 2.5)]) == []


def test_export_tier_check_flags_an_int8_file_over_budget():
    pipeline = pytest.importorskip("har_export.pipeline")
    fits = pipeline.tier_check("mcu", {"int8": b"\0" * 30_000})
    assert fits["met"] and fits["int8_bytes"] == 30_000 and fits["problem"] is None
    over = pipeline.tier_check("mcu", {"int8": b"\0" * 40_000, "float32": b""})
    assert not over["met"] and "over the mcu tier's 32 KiB budget" in over["problem"]
    assert not pipeline.tier_check("pi", {"float32": b""})["met"]
    # A learned context head is flash too: 24 KB + 23 KB no longer fits 32 KiB.
    both = pipeline.tier_check("mcu", {"int8": b"\0" * 24_000}, context_bytes=23_000)
    assert not both["met"] and "int8 file + context head (23,000 bytes)" in both["problem"]
    assert pipeline.tier_check(None, {"int8": b""}) == {"requested": None, "met": False,
                                                        "problem": "no tier requested"}
    with pytest.raises(pipeline.OptionError, match="unknown tier"):
        pipeline.ExportOptions(tier="npu").check()


def test_inspect_shows_the_tier_or_why_there_is_none(tmp_path):
    pytest.importorskip("tensorflow", reason="har-export inspect reads .tflite files with TF")
    inspect = pytest.importorskip("har_export.inspect_bundle")
    pi = load_bundle(_bundle_with(tmp_path / "a", lambda doc: doc.update(tier="pi")))
    assert "tier        pi (Raspberry Pi / phone class" in inspect.describe_bundle(pi)
    flagged = load_bundle(_bundle_with(tmp_path / "b", lambda doc: doc["training"].update(
        tier={"requested": "mcu", "met": False, "problem": "int8 file 40,000 bytes is over"})))
    assert ("tier        none: mcu was asked for, but int8 file 40,000 bytes is over"
            in inspect.describe_bundle(flagged))
    assert "tier        none recorded" in inspect.describe_bundle(load_bundle(GOLDEN))
