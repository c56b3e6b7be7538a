"""Every command the tools suggest ("next: ...", "write it first: ...; then: ...") works as
printed: each is run with CliRunner and must get past click's usage checks and do its job."""
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from har_export.cli import cli as export_cli  # noqa: E402
from har_runtime.cli import main as runtime_cli  # noqa: E402
from har_runtime.cli import source_hint  # noqa: E402
from har_runtime.exit_codes import ExitCode  # noqa: E402
from har_train.cli import cli as train_cli  # noqa: E402

pytestmark = pytest.mark.tf

CLIS = {"har-train": train_cli, "har-export": export_cli, "har-runtime": runtime_cli}
GOLDEN_BUNDLE = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"
FIT = ["fit", "--data", "synthetic:0", "--model", "tiny_dscnn", "--epochs", "2",
       "--batch-size", "32"]
HINT = re.compile(r"(?:next|first|then): (har-(?:train|export|runtime) [^;\n]*)")


def hints(text: str):
    """The suggested commands in a tool's output, in order, as argv lists."""
    return [shlex.split(command) for command in HINT.findall(text)]


def run_hint(argv):
    """Run one suggested command; it must not be a usage error."""
    result = CliRunner().invoke(CLIS[argv[0]], argv[1:])
    assert result.exit_code != 2 and "Usage:" not in result.output, (argv, result.output)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two two-epoch runs under a folder whose name needs quoting in a shell."""
    root = tmp_path_factory.mktemp("hints") / "my runs"
    outputs = []
    for seed in (1, 2):
        result = CliRunner().invoke(train_cli, FIT + ["--seed", str(seed), "--out",
                                                      str(root / f"s{seed}")])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    return root, outputs


def test_fit_announces_model_selection_and_its_export_hint_works(runs):
    root, outputs = runs
    assert "trained all 2 epochs; restored epoch " in outputs[0]
    commands = hints(outputs[0])
    assert commands == [["har-export", "convert", str(root / "s1" / "model.keras"),
                         "--out", str(root / "s1" / "bundle")]]
    result = run_hint(commands[0])
    assert result.exit_code in (0, 3), result.output  # 3: a 2-epoch model may fail the gate
    assert (root / "s1" / "bundle" / "bundle.json").is_file()


def test_ensemble_export_hint_works(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "abc"
    merged = CliRunner().invoke(train_cli, ["ensemble", str(root / "s1"), str(root / "s2"),
                                            "--out", str(out)])
    assert merged.exit_code == 0, merged.output
    commands = hints(merged.output)
    assert len(commands) == 1 and commands[0][:2] == ["har-export", "convert"]
    assert run_hint(commands[0]).exit_code in (0, 3)
    assert (out / "bundle" / "bundle.json").is_file()


def test_replay_of_a_training_source_suggests_commands_that_replay_it(tmp_path, monkeypatch):
    if not (GOLDEN_BUNDLE / "bundle.json").is_file():
        pytest.skip("golden bundle missing (scripts/make_golden_bundle.py)")
    monkeypatch.chdir(tmp_path)  # the hint writes to a relative runs/ folder
    refused = CliRunner().invoke(runtime_cli, ["replay", str(GOLDEN_BUNDLE), "synthetic:0"])
    assert refused.exit_code == ExitCode.BAD_DATA and len(refused.output.strip().splitlines()) == 1
    commands = hints(refused.output)
    assert [c[:2] for c in commands] == [["har-train", "to-csv"], ["har-runtime", "replay"]]
    written = run_hint(commands[0])
    assert written.exit_code == 0 and "wrote 10 recording(s)" in written.output
    replayed = run_hint(commands[1])
    assert replayed.exit_code == 0 and "overall accuracy" in replayed.output


def test_source_hint_quotes_paths_and_maps_the_old_hapt_subject_syntax():
    assert hints(source_hint("hapt:2", Path("my bundle"))) == [
        ["har-train", "to-csv", "hapt", "runs/hapt-2", "--subject", "2"],
        ["har-runtime", "replay", "my bundle", "runs/hapt-2", "--fast"]]
    assert hints(source_hint("uci:/data/UCI HAR", Path("b")))[0] == [
        "har-train", "to-csv", "uci:/data/UCI HAR", "runs/uci-data-UCI-HAR"]
    assert source_hint("csv:/x", Path("b")) == "" and source_hint("x.csv", Path("b")) == ""
