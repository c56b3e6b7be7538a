"""Temporal context learned from streams: a GRU head over a run's window outputs.

`har-train context RUN --oof KFOLD` fits it. The head learns from continuous recordings, one
window after another as a device sees them, so it must not learn from a base model's outputs
on its own training windows (near-perfect there, so the head would learn to trust them
blindly): it is trained on the out-of-fold outputs of a k-fold run of the same recipe
(`har-train fit --kfold K`), each non-test subject predicted by the fold model that never saw
it; the run's training subjects train the head, its validation subjects pick the epoch. The
test subjects are never touched. What the head is fed (`head_features`) and how the runtime
steps it live in `har_runtime.recurrent_context`. Keras 3 only (any backend).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.contract.recording import Recording
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.contract.windowing import make_windows
from har_runtime.recurrent_context import LOG_FLOOR, head_features
from har_train.errors import ConfigError
from har_train.report import PREDICT_BATCH, metrics_from_predictions
from har_train.run_model import load_run_model

HEAD_FILE = "context.keras"
SUMMARY_FILE = "context.json"
GRU_LAYER, OUT_LAYER = "context_gru", "context_out"


@dataclass(frozen=True)
class HeadConfig:
    """How the head is built and fitted (defaults screened by leave-subjects-out CV over
    out-of-fold streams; docs/RESULTS.md, "Learned temporal context")."""

    hidden: int = 32
    epochs: int = 120
    #: Windows per training sequence: each starts from a zero state, as a stream after a gap.
    crop: int = 160
    crops_per_epoch: int = 256
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0
    #: Where the out-of-fold outputs come from: None, each fold's Keras model; a variant name
    #: ("int8"), that variant of each fold's bundle (FOLD/bundle, `har-export convert`), so the
    #: head learns from the outputs the device's own file will give it.
    oof_variant: Optional[str] = None

    def check(self, num_classes: int) -> None:
        """ConfigError for values the head cannot be built or run with."""
        if min(self.hidden, self.epochs, self.crop, self.crops_per_epoch, self.batch_size) < 1:
            raise ConfigError("context hidden, epochs, crop, crops and batch size must be >= 1")
        if self.hidden == num_classes:
            raise ConfigError(f"context hidden size must differ from the {num_classes} classes "
                              "(the runtime tells the head's inputs apart by width)")
        if not self.learning_rate > 0:
            raise ConfigError("context learning rate must be > 0")


@dataclass(frozen=True)
class WindowStream:
    """One recording's windows in stream order: base-model probabilities and labels (-1:
    unlabelled, never scored or learned from, but still stepped through)."""

    subject: int
    probs: np.ndarray
    labels: np.ndarray


def recording_streams(model: Any, recordings: Sequence[Recording], spec: PreprocessSpec,
                      subjects: Sequence[int]) -> List[WindowStream]:
    """`model`'s outputs on every window of each recording of `subjects`, in order."""
    wanted = set(subjects)
    batches = [(rec.subject, make_windows(rec.spec_frames(spec), spec, rec.labels))
               for rec in recordings if rec.subject in wanted and len(rec) >= spec.window]
    if not batches:
        return []
    # One predict call over every window: per-recording calls would retrace per length.
    x = np.concatenate([b.windows for _, b in batches])
    probs = np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), np.float32)
    ends = np.cumsum([len(b.labels) for _, b in batches])
    return [WindowStream(int(subject), p, b.labels)
            for (subject, b), p in zip(batches, np.split(probs, ends[:-1]))]


def _fold_dirs(kfold_dir: Path) -> List[Path]:
    try:
        names = json.loads((kfold_dir / "kfold.json").read_text())["folds"]
        if not all(isinstance(n, str) and n and Path(n).name == n != ".." for n in names):
            raise ValueError("fold names must be plain folder names")
        return [kfold_dir / name for name in names]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{kfold_dir} is not a k-fold folder (har-train fit --kfold K): "
                          "kfold.json is missing or unreadable") from None


class _BundleModel:
    """A fold bundle's variant with the one Keras call `recording_streams` makes (`predict`)."""

    def __init__(self, fold: Path, variant: str, spec: PreprocessSpec):
        from har_runtime.bundle import BundleError, load_bundle, sha256_file

        try:
            bundle = load_bundle(fold / "bundle")
            self._classifier = bundle.open(variant)
        except BundleError as exc:
            raise ConfigError(f"{fold}/bundle: {exc} (make it with har-export convert "
                              f"{fold}/model.keras --out {fold}/bundle)") from None
        if bundle.spec != spec or \
                bundle.training.get("model_sha256") != sha256_file(fold / "model.keras"):
            raise ConfigError(f"{fold}/bundle was not exported from {fold}/model.keras")
        self._classes = spec.num_classes

    def predict(self, x: np.ndarray, batch_size: int, verbose: int = 0) -> np.ndarray:
        from har_runtime.stream import classify

        return classify(self._classifier, np.asarray(x, np.float32), self._classes).copy()


def oof_streams(kfold_dir, recordings: Sequence[Recording], spec: PreprocessSpec,
                test: Sequence[int], variant: Optional[str] = None) -> List[WindowStream]:
    """Out-of-fold streams: each fold's model (or its bundle's `variant`) on its own
    validation subjects' recordings.

    The folds must share `spec` and hold out the same `test` subjects as the run the head is
    for; anything else would feed the head windows of a different task, or of test subjects.
    """
    streams: List[WindowStream] = []
    for fold in _fold_dirs(Path(kfold_dir)):
        try:
            fold_spec = PreprocessSpec.from_json((fold / "spec.json").read_text())
            split = json.loads((fold / "config.json").read_text())["split"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{fold}: unreadable spec.json/config.json") from None
        if fold_spec != spec:
            raise ConfigError(f"{fold}: its spec differs from the run's (another task, "
                              "channels or window)")
        if sorted(split.get("test", [])) != sorted(test):
            raise ConfigError(f"{fold}: its test subjects {split.get('test')} differ from the "
                              f"run's {list(test)}")
        model = (load_run_model(fold, spec, "k-fold model") if variant is None
                 else _BundleModel(fold, variant, spec))
        streams += recording_streams(model, recordings, spec, split["val"])
    return streams


def build_sequence_head(num_classes: int, hidden: int) -> Any:
    """The head as trained: (batch, time, K) log-probabilities -> (batch, time, K) softmax."""
    import keras

    inputs = keras.Input((None, num_classes), name="features")
    x = keras.layers.GRU(hidden, return_sequences=True, name=GRU_LAYER)(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=OUT_LAYER)(x)
    return keras.Model(inputs, outputs, name="context_head")


def step_model(sequence_head: Any) -> Any:
    """The same head as one step: [features (1, K), state (1, H)] -> [probs, next state].

    Keras's GRU (reset_after, sigmoid gates, tanh candidate) written out with Dense layers
    and elementwise ops, so it converts to plain TFLite builtins and the state stays outside
    the model: one interpreter can serve every device, each stream keeping its own vector.
    """
    import keras
    from keras import ops

    kernel, recurrent, bias = sequence_head.get_layer(GRU_LAYER).get_weights()
    k, h = kernel.shape[0], recurrent.shape[0]
    features, state = keras.Input((k,), name="features"), keras.Input((h,), name="state")
    from_x = keras.layers.Dense(3 * h, name="input_gates")
    from_h = keras.layers.Dense(3 * h, name="state_gates")
    gx, gh = from_x(features), from_h(state)
    update = ops.sigmoid(gx[:, :h] + gh[:, :h])
    reset = ops.sigmoid(gx[:, h:2 * h] + gh[:, h:2 * h])
    candidate = ops.tanh(gx[:, 2 * h:] + reset * gh[:, 2 * h:])
    next_state = update * state + (1.0 - update) * candidate
    out = keras.layers.Dense(k, activation="softmax", name=OUT_LAYER)
    model = keras.Model([features, state], [out(next_state), next_state], name="context_step")
    from_x.set_weights([kernel, bias[0]])
    from_h.set_weights([recurrent, bias[1]])
    out.set_weights(sequence_head.get_layer(OUT_LAYER).get_weights())
    return model


def run_step_model(model: Any, probs: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    """A step model over one contiguous sequence of probabilities, from a zero state (the
    Keras reference of the parity gate: what the runtime's `RecurrentHead.run` computes)."""
    state = np.zeros((1, int(model.inputs[1].shape[-1])), np.float32)
    feats, out = head_features(probs, floor), []
    for row in feats:
        p, state = model([row[None, :], state], training=False)
        out.append(np.asarray(p)[0])
        state = np.asarray(state)
    return np.asarray(out, np.float32).reshape(-1, feats.shape[-1])


def _crops(streams: Sequence[WindowStream], rng: np.random.Generator,
           config: HeadConfig) -> Tuple[np.ndarray, ...]:
    """A batch of equal-length random crops (features, targets, weights)."""
    length = min(config.crop, min(len(s.labels) for s in streams))
    xs, ys, ws = [], [], []
    for i in rng.integers(len(streams), size=config.crops_per_epoch):
        s = streams[i]
        start = int(rng.integers(0, len(s.labels) - length + 1))
        y = s.labels[start:start + length]
        xs.append(head_features(s.probs[start:start + length]))
        ys.append(np.maximum(y, 0))
        ws.append((y >= 0).astype(np.float32))
    return np.stack(xs), np.stack(ys), np.stack(ws)


def sequence_probs(model: Any, streams: Sequence[WindowStream]) -> List[np.ndarray]:
    """The sequence head's outputs on whole streams, in one batch: the head is causal, so
    padding a stream at its end cannot change its outputs (and one shape means one trace)."""
    longest = max(len(s.labels) for s in streams)
    x = np.zeros((len(streams), longest, streams[0].probs.shape[1]), np.float32)
    for i, s in enumerate(streams):
        x[i, :len(s.labels)] = head_features(s.probs)
    p = np.asarray(model.predict(x, batch_size=len(streams), verbose=0))
    return [p[i, :len(s.labels)] for i, s in enumerate(streams)]


def _val_loss(model: Any, streams: Sequence[WindowStream]) -> float:
    """Mean cross-entropy over the labelled windows of whole validation streams."""
    total, count = 0.0, 0
    for s, p in zip(streams, sequence_probs(model, streams)):
        keep = s.labels >= 0
        total -= float(np.log(np.maximum(p[keep, s.labels[keep]], 1e-12)).sum())
        count += int(keep.sum())
    return total / max(count, 1)


def fit_head(train: Sequence[WindowStream], val: Sequence[WindowStream],
             num_classes: int, config: HeadConfig) -> Tuple[Any, List[float], int]:
    """Fit the sequence head; returns it with the best validation-loss weights, the
    validation loss per epoch and the chosen epoch (1-based)."""
    import keras

    config.check(num_classes)
    if not train or not val:
        raise ConfigError("the context head needs out-of-fold streams of both the run's "
                          "training and validation subjects")
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_sequence_head(num_classes, config.hidden)
    model.compile(keras.optimizers.Adam(config.learning_rate), "sparse_categorical_crossentropy")
    losses: List[float] = []
    best: Optional[list] = None
    for _ in range(config.epochs):
        x, y, w = _crops(train, rng, config)
        model.fit(x, y, sample_weight=w, batch_size=config.batch_size, epochs=1, verbose=0)
        losses.append(_val_loss(model, val))
        if losses[-1] <= min(losses):
            best = model.get_weights()
    model.set_weights(best)
    return model, losses, int(np.argmin(losses)) + 1


def stream_scores(model: Any, streams: Sequence[WindowStream],
                  labels: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Accuracy and macro-F1 on labelled windows: the base model alone vs with the head."""
    truth, raw, ctx = [], [], []
    for s, p in zip(streams, sequence_probs(model, streams)):
        keep = s.labels >= 0
        truth.append(s.labels[keep])
        raw.append(s.probs.argmax(axis=1)[keep])
        ctx.append(p.argmax(axis=1)[keep])
    y = np.concatenate(truth)
    out = {}
    for name, pred in (("window", raw), ("context", ctx)):
        m = metrics_from_predictions(y, np.concatenate(pred), labels)
        out[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "windows": m["n"]}
    return out


@dataclass(frozen=True)
class ContextResult:
    """What `train_context` wrote and measured (validation subjects, out of fold)."""

    out_dir: Path
    best_epoch: int
    scores: Dict[str, Dict[str, float]]


def train_context(run_dir, kfold_dir, out_dir, config: HeadConfig = HeadConfig(),
                  overwrite: bool = False) -> ContextResult:
    """Fit a run's context head on out-of-fold streams; write context.keras (the step model
    har-export converts) and context.json (settings, choice and validation scores)."""
    from har_train.data.sources import load_source
    from har_train.rundir import check_out_dir, prepare_out_dir

    run_dir = Path(run_dir)
    try:
        spec = PreprocessSpec.from_json((run_dir / "spec.json").read_text())
        run_config = json.loads((run_dir / "config.json").read_text())
        split = run_config["split"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{run_dir} is not a run folder (spec.json/config.json)") from None
    check_out_dir(out_dir, overwrite)
    source = load_source(run_config["data"], spec.sample_rate_hz,
                         run_config.get("acc_unit", "g"), run_config.get("gyro_unit", "rad/s"))
    streams = oof_streams(kfold_dir, source.recordings, spec, split["test"], config.oof_variant)
    train = [s for s in streams if s.subject in set(split["train"])]
    val = [s for s in streams if s.subject in set(split["val"])]
    model, losses, epoch = fit_head(train, val, spec.num_classes, config)
    scores = stream_scores(model, val, spec.labels)
    record = {"run_dir": str(run_dir), "kfold_dir": str(kfold_dir), "best_epoch": epoch,
              "val_loss": losses, "val_subjects": split["val"], "train_streams": len(train),
              "val_streams": len(val), "val_scores": scores}
    out = save_context(prepare_out_dir(out_dir, overwrite), model, spec.labels, config, record)
    return ContextResult(out, epoch, scores)


def save_context(out: Path, sequence_head: Any, labels: Sequence[str], config: HeadConfig,
                 record: Dict[str, Any]) -> Path:
    """Write a context folder: context.keras (the step model har-export converts) and
    context.json (labels, state size, floor, config and `record`: how it was chosen)."""
    step_model(sequence_head).save(out / HEAD_FILE)
    summary = {"labels": list(labels), "state_size": config.hidden, "floor": LOG_FLOOR,
               "config": asdict(config), **record}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return out
