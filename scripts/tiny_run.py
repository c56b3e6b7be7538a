"""A tiny training run folder on synthetic data (docs/CONTRACTS.md layout), built in seconds.

Shared by the export tests (tests/export) and `python -m scripts.make_golden_bundle`. The model
is deliberately small (about 1.6 k parameters) so its TFLite variants are a few KB each.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

DATA = "synthetic:0"


def tiny_model(input_shape, num_classes: int, seed: int = 0, norm_stats=None):
    """Two strided 1-D convolutions, global average pooling, softmax; with `norm_stats`
    (mean, variance) a per-channel `Normalization` opens it, as in every har-train model."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="windows")
    x = inputs
    if norm_stats is not None:
        mean, var = norm_stats
        x = keras.layers.Normalization(axis=-1, mean=list(mean), variance=list(var),
                                       name="normalize")(x)
    x = keras.layers.Conv1D(8, 5, strides=2, activation="relu", name="conv1")(x)
    # 5 x 8 x 32 = 1280 weights: over the converter's 1024-element floor for dynamic-range
    # quantisation, so the "dynamic" variant really holds int8 weights.
    x = keras.layers.Conv1D(32, 5, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny")


def make_tiny_run(run_dir, epochs: int = 30, seed: int = 0, window: int = 128, hop: int = 64,
                  model=None, normalize: bool = True, context: int = 0) -> Path:
    """Train the tiny model (or save `model` untrained) and write a complete run folder.
    `normalize=False` leaves out the Normalization layer (a model that takes sensor units);
    `context` feeds it that many samples before each labelled window (har-train --context)."""
    import keras

    from har_train.data.sources import load_recordings
    from har_train.dataset import build_split_data, fingerprint, make_spec
    from har_train.splits import default_split

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    recordings = load_recordings(DATA)
    spec = make_spec("har6", window=window, hop=hop, context=context)
    split = default_split([r.subject for r in recordings], seed=seed)
    data = build_split_data(recordings, spec, split)
    if model is None:
        flat = data.train.x.reshape(-1, data.train.x.shape[-1]).astype(np.float64)
        stats = (flat.mean(axis=0), flat.var(axis=0)) if normalize else None
        model = tiny_model(spec.input_shape, spec.num_classes, seed, stats)
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(data.train.x, data.train.y, epochs=epochs, batch_size=32, verbose=0,
                  shuffle=True)
    model.save(run / "model.keras")
    (run / "spec.json").write_text(spec.to_json())
    config = {"data": DATA, "task": "har6", "channels": "acc", "model": "tiny", "seed": seed,
              "split": split.to_dict(), "epochs": epochs, "context": context}
    (run / "config.json").write_text(json.dumps(config, indent=2))
    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "backend": keras.backend.backend(), "numpy": np.__version__}
    (run / "versions.json").write_text(json.dumps(versions, indent=2))
    (run / "fingerprint.txt").write_text(fingerprint(recordings) + "\n")
    return run


def make_tiny_context(run_dir, out_dir, epochs: int = 8, hidden: int = 8, seed: int = 0) -> Path:
    """A context folder (`har-train context` layout) for a tiny run, in seconds. Its head
    learns from the run's own model on its training and validation recordings, not from
    out-of-fold outputs as `har-train context` does: a fixture, not a recipe."""
    from har_runtime.contract.spec import PreprocessSpec
    from har_train.context_head import HeadConfig, fit_head, recording_streams, save_context
    from har_train.data.sources import load_recordings
    from har_train.run_model import load_run_model

    run, out = Path(run_dir), Path(out_dir)
    spec = PreprocessSpec.from_json((run / "spec.json").read_text())
    split = json.loads((run / "config.json").read_text())["split"]
    model = load_run_model(run, spec, "tiny run")
    recordings = load_recordings(DATA)
    train, val = (recording_streams(model, recordings, spec, split[side])
                  for side in ("train", "val"))
    config = HeadConfig(hidden=hidden, epochs=epochs, crop=32, crops_per_epoch=64, seed=seed)
    head, _, epoch = fit_head(train, val, spec.num_classes, config)
    out.mkdir(parents=True, exist_ok=True)
    return save_context(out, head, spec.labels, config,
                        {"run_dir": str(run), "kfold_dir": None, "best_epoch": epoch,
                         "val_scores": {}, "note": "fixture: trained on in-sample outputs"})
