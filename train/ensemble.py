"""Average several trained runs into one model (a seed ensemble), written as a run folder.

Runs of one recipe that differ only in their seed disagree on the hard windows (sitting vs
standing); their mean softmax is steadier and more accurate than any one of them (measured
with 5-fold CV in docs/RESULTS.md). The merged model is a single Keras graph, so `har-export`
converts, gates and bundles it like any run: one shared input standardisation (the members'
are identical, since they saw the same training windows), each member's layers after it, and
an average of their softmax outputs.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from har_train.config import TrainConfig
from har_train.dataset import RunData, load_run
from har_train.errors import ConfigError
from har_train.fit import TrainResult
from har_train.models import count_params
from har_train.report import evaluate, plot_confusion, write_metrics
from har_train.run_model import load_run_model
from har_train.rundir import check_out_dir, package_versions, prepare_out_dir

#: Standardisation constants of members must agree to this relative tolerance.
NORM_RTOL = 1e-5


def _load_member(run_dir: Path) -> Tuple[RunData, Any]:
    run = load_run(run_dir)
    return run, load_run_model(run_dir, run.spec, "ensemble member")


def _normalization(model, run_dir: Path):
    """The member's leading input standardisation, as har-train builds it (and as har-export's
    split_input_norm expects it): a non-inverting, per-channel Normalization that alone reads
    the input."""
    import keras

    layer = model.layers[1] if len(model.layers) > 1 else None
    usual = (isinstance(layer, keras.layers.Normalization) and not layer.invert
             and tuple(layer.axis) in ((-1,), (2,)) and layer.input is model.inputs[0])
    if not usual:
        raise ConfigError(f"ensemble member {run_dir}: the model does not start with the "
                          "per-channel input standardisation har-train builds")
    return layer


def _recipe(run: RunData, run_dir: Path) -> Dict[str, Any]:
    """A member's training options apart from its seed, with today's defaults for options its
    config.json predates (the split is compared separately)."""
    try:
        config = TrainConfig.from_stored(run.config)
    except ConfigError as exc:
        raise ConfigError(f"ensemble member {run_dir}: config.json: {exc}") from None
    return {k: v for k, v in config.to_dict().items() if k != "seed"}


def _check_members(runs: List[RunData], norms, run_dirs: Sequence[Path]) -> None:
    first, first_norm = runs[0], norms[0]
    for run, norm, run_dir in zip(runs[1:], norms[1:], run_dirs[1:]):
        if run.spec != first.spec:
            raise ConfigError(f"ensemble member {run_dir} has other preprocessing than "
                              f"{run_dirs[0]}")
        same_data = run.config.get("data") == first.config.get("data")
        if not same_data or run.data.split != first.data.split:
            raise ConfigError(f"ensemble member {run_dir} trained on other data or subjects "
                              f"than {run_dirs[0]}")
        mine, theirs = _recipe(run, run_dir), _recipe(first, run_dirs[0])
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        if differ:
            raise ConfigError(f"ensemble member {run_dir} differs from {run_dirs[0]} in "
                              f"{', '.join(differ)}; members are one recipe with other seeds")
        for name in ("mean", "variance"):
            if not np.allclose(np.asarray(getattr(norm, name)),
                               np.asarray(getattr(first_norm, name)), rtol=NORM_RTOL):
                raise ConfigError(f"ensemble member {run_dir} standardises its input "
                                  f"differently from {run_dirs[0]}")


def _core(model, run_dir: Path, name: str):
    """The member's layers after its standardisation, as a model of their own."""
    import keras

    try:
        core = keras.Model(model.layers[1].output, model.output, name=name)
    except ValueError:  # another layer also reads the raw input: the cut would disconnect it
        core = None
    if core is None or len(core.layers) != len(model.layers) - 1:
        raise ConfigError(f"ensemble member {run_dir}: layers other than the standardisation "
                          "read the raw input")
    return core


def build_ensemble(cores: Sequence[Any], norm, spec) -> Any:
    """One Keras model: the shared standardisation `norm`, every member's core, mean softmax."""
    import keras
    from keras import layers

    inputs = layers.Input(shape=spec.input_shape, name="window")
    x = layers.Normalization(axis=-1, mean=np.asarray(norm.mean).reshape(-1).tolist(),
                             variance=np.asarray(norm.variance).reshape(-1).tolist(),
                             name="normalize")(inputs)
    mean = layers.Average(name="ensemble_mean")([core(x) for core in cores])
    return keras.Model(inputs, mean, name=f"ensemble{len(cores)}")


def _write_run(out: Path, model, runs: List[RunData], run_dirs: Sequence[Path]) -> Dict:
    first = runs[0]
    config = dict(first.config, members=[str(d) for d in run_dirs],
                  member_seeds=[r.config.get("seed") for r in runs],
                  model=f"ensemble of {len(runs)} {first.config.get('model')}")
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "spec.json").write_text(first.spec.to_json() + "\n")
    if (run_dirs[0] / "fingerprint.txt").is_file():
        shutil.copyfile(run_dirs[0] / "fingerprint.txt", out / "fingerprint.txt")
    (out / "versions.json").write_text(json.dumps(package_versions(), indent=2) + "\n")
    model.save(out / "model.keras")
    return config


def _members_train_seconds(run_dirs: Sequence[Path]) -> float:
    """What training the members took (their metrics.json), the ensemble's training cost."""
    total = 0.0
    for run_dir in run_dirs:
        try:
            total += float(json.loads((run_dir / "metrics.json").read_text())["train_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a member without the figure adds nothing rather than failing the merge
    return round(total, 1)


def merge_runs(run_dirs: Sequence, out_dir, overwrite: bool = False) -> TrainResult:
    """Merge >= 2 run folders of one recipe (same spec, data and subject split) into an ensemble
    run folder `out_dir` and score it on the validation and test subjects (metrics.json)."""
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise ConfigError("an ensemble needs at least two run folders")
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise ConfigError("an ensemble member is named twice")
    check_out_dir(out_dir, overwrite)
    start = time.monotonic()
    loaded = [_load_member(d) for d in dirs]
    runs, models = [r for r, _ in loaded], [m for _, m in loaded]
    norms = [_normalization(m, d) for m, d in zip(models, dirs)]
    _check_members(runs, norms, dirs)
    cores = [_core(m, d, f"member{i}") for i, (m, d) in enumerate(zip(models, dirs), start=1)]
    model = build_ensemble(cores, norms[0], runs[0].spec)
    out = prepare_out_dir(out_dir, overwrite)
    config = _write_run(out, model, runs, dirs)
    data, labels = runs[0].data, runs[0].spec.labels
    metrics = {"model": config["model"], "params": count_params(model),
               "task": config.get("task"), "labels": list(labels), "members": len(runs),
               "train_seconds": _members_train_seconds(dirs),
               "merge_seconds": round(time.monotonic() - start, 1),
               "windows": {"train": len(data.train), "val": len(data.val),
                           "test": len(data.test)},
               "val": evaluate(model, data.val, labels),
               "test": evaluate(model, data.test, labels)}
    write_metrics(out / "metrics.json", metrics)
    plot_confusion(metrics["test"]["confusion_matrix"], labels, out / "confusion_matrix.png",
                   title=f"{config['model']} test subjects: accuracy "
                         f"{metrics['test']['accuracy']:.3f}")
    return TrainResult(out, metrics, {})
