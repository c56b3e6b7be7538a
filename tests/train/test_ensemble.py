"""`har-train ensemble` / har_train.ensemble and the leaderboard's ensemble rows, on synthetic
data: the merged model is the mean of its members, exports like any run, refuses mismatches."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from har_train.cli import cli  # noqa: E402
from har_train.dataset import load_run  # noqa: E402
from har_train.ensemble import merge_runs  # noqa: E402
from har_train.errors import ConfigError, RunExistsError  # noqa: E402

pytestmark = pytest.mark.tf

FIT = ["fit", "--data", "synthetic:0", "--model", "tiny_dscnn", "--epochs", "1",
       "--batch-size", "32"]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    runs = []
    for seed in (1, 2, 3):
        out = root / f"s{seed}"
        result = CliRunner().invoke(cli, FIT + ["--seed", str(seed), "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs.append(out)
    return runs


def _load(path):
    return keras.saving.load_model(path / "model.keras", safe_mode=True, compile=False)


def test_merged_model_is_the_mean_of_its_members_and_a_valid_run(members, tmp_path):
    out = tmp_path / "ens"
    result = CliRunner().invoke(cli, ["ensemble", *map(str, members), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ensemble of 3 tiny_dscnn" in result.output and "har-export convert" in result.output
    run = load_run(out)
    x = run.data.test.x[:50]
    expected = np.mean([_load(m).predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(_load(out).predict(x, verbose=0), expected, atol=1e-6)
    config = json.loads((out / "config.json").read_text())
    assert config["members"] == [str(m) for m in members] and config["member_seeds"] == [1, 2, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["members"] == 3 and metrics["test"]["n"] == len(run.data.test)
    assert metrics["params"] == sum(_load(m).count_params() for m in members)
    member_seconds = [json.loads((m / "metrics.json").read_text())["train_seconds"]
                      for m in members]
    assert metrics["train_seconds"] == pytest.approx(sum(member_seconds), abs=0.2)


def test_merged_model_keeps_one_standardisation_for_the_exporter(members, tmp_path):
    pytest.importorskip("tensorflow")
    from har_export.convert import split_input_norm

    older = tmp_path / "older"  # a member trained before the distillation options existed
    shutil.copytree(members[1], older)
    config = json.loads((older / "config.json").read_text())
    del config["teacher"], config["distill_weight"]
    (older / "config.json").write_text(json.dumps(config))
    merge_runs([members[0], older], tmp_path / "ens")
    core, norm = split_input_norm(_load(tmp_path / "ens"))
    assert norm is not None
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in core.layers)


def test_mismatched_or_missing_members_are_refused_before_writing(members, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(ConfigError, match="at least two"):
        merge_runs(members[:1], out)
    with pytest.raises(ConfigError, match="named twice"):
        merge_runs([members[0], members[0]], out)
    other = tmp_path / "gyro"
    fit = CliRunner().invoke(cli, FIT + ["--channels", "acc_gyro", "--out", str(other)])
    assert fit.exit_code == 0, fit.output
    with pytest.raises(ConfigError, match="other preprocessing"):
        merge_runs([members[0], other], out)
    split = tmp_path / "split"
    fit = CliRunner().invoke(cli, FIT + ["--val-subjects", "1,3", "--out", str(split)])
    assert fit.exit_code == 0, fit.output
    with pytest.raises(ConfigError, match="other data or subjects"):
        merge_runs([members[0], split], out)
    longer = tmp_path / "longer"
    fit = CliRunner().invoke(cli, FIT + ["--epochs", "2", "--seed", "1", "--out", str(longer)])
    assert fit.exit_code == 0, fit.output
    with pytest.raises(ConfigError, match="differs .* in epochs; members are one recipe"):
        merge_runs([members[0], longer], out)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("spec.json", "config.json"):
        (bare / name).write_bytes((members[0] / name).read_bytes())
    with pytest.raises(ConfigError, match="no model.keras"):
        merge_runs([members[0], bare], out)
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(RunExistsError):
        merge_runs(members[:2], out)
    cli_refusal = CliRunner().invoke(cli, ["ensemble", str(members[0]), "--out", str(out)])
    assert cli_refusal.exit_code == 3 and "at least two" in cli_refusal.output


def test_leaderboard_ensemble_row_trains_members_once_and_reuses_them(tmp_path):
    from har_train.fit import train
    from har_train.presets import make_config
    from scripts.leaderboard.cli import _members_of, load_records, row_config, train_row_model
    from scripts.leaderboard.rows import MEMBER_SEED_STRIDE, Row

    row = Row("ens", "har6", "acc", "acc3-int8", "accuracy", 0.9, members=2)
    config = make_config("acc3-int8", {"data": "synthetic:0", "epochs": 1, "seed": 4})
    train(config, tmp_path / "run")  # the row's earlier one-run model becomes member 0
    first = (tmp_path / "run" / "model.keras").read_bytes()
    metrics = train_row_model(row, config, tmp_path, None, reuse=True)
    assert metrics["members"] == 2
    assert (tmp_path / "member0" / "model.keras").read_bytes() == first
    seeds = [json.loads((tmp_path / f"member{j}" / "config.json").read_text())["seed"]
             for j in (0, 1)]
    assert seeds == [4, 4 + MEMBER_SEED_STRIDE] == list(row.member_seeds(4))
    stamp = (tmp_path / "member1" / "model.keras").stat().st_mtime_ns
    train_row_model(row, config, tmp_path, None, reuse=True)
    assert (tmp_path / "member1" / "model.keras").stat().st_mtime_ns == stamp
    train_row_model(row, config.replace(epochs=2), tmp_path, None, reuse=True)
    assert (tmp_path / "member1" / "model.keras").stat().st_mtime_ns != stamp
    assert _members_of({"seed": 4}) == [4]
    assert _members_of({"seed": 4, "member_seeds": seeds}) == seeds
    work = tmp_path / "work"
    for seed, extra in ((0, {}), (1, {"member_seeds": [1, 1 + MEMBER_SEED_STRIDE]})):
        (work / "ens" / f"s{seed}").mkdir(parents=True)
        stored = row_config(row, seed, "hapt", None).to_dict()
        record = dict({"seed": seed, "config": stored}, **extra)
        (work / "ens" / f"s{seed}" / "record.json").write_text(json.dumps(record))
    # the one-run record of seed 0 is not this row's model any more
    assert [r["seed"] for r in load_records([row], work, "hapt")] == [1]
