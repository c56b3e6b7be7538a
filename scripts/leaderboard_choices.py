"""How the presets behind the leaderboard rows were chosen: validation evidence only.

Every candidate trained on HAPT (har6 and accelerometer unless the candidate says otherwise),
default split (training subjects 1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 19, 22, 23, 25, 27, 28, 29,
30; validation subjects 17, 21, 26), seed 0, with `har_train.fit.train` (the same as `har-train
fit --preset acc3-int8` plus the listed change). The int8 columns convert the selected weights
with har-export's converter (calibration on training windows) and score the **validation**
windows. The test subjects were not scored for any choice.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

CHOICES = """\
* **har6-acc (preset `acc3-int8`).** Candidates were MCU-sized depthwise-separable CNNs (int8
  file <= 32 KB: with ~20 KB of flatbuffer overhead that means <= ~11 k params, so wider
  variants were ruled out by size before training). On the validation subjects, the old
  40-epoch recipe reached 95.2 %; feeding body + gravity (`--acc-mode body_gravity`) 97.8 %;
  label smoothing 0.1 with a 60-epoch cosine schedule (patience 15) 98.2 %, and it was also the
  only candidate whose int8 file agreed with its float model on >= 99.5 % of validation windows
  (99.7 % vs 96.8 % and 99.0 %). `acc3-int8` is now that recipe. body_gravity was not combined
  with label smoothing (time); the int8 input tensor has one scale for all channels, which
  hurts small body-acceleration channels, so the total-acceleration model was preferred (this
  was before har-export moved the standardisation out of the int8 graph, below; body_gravity
  has not been retried since).
* **har6-acc_gyro (preset `acc6-int8`).** The har6-acc recipe carried over; its int8 file loses
  ~3 % agreement with the float model. Diagnosis (seed 0; no choice was made from the first
  figure, which was measured on the test windows of session 1's run): quantising only the input
  costs 0.7 % agreement; TF's QuantizationDebugger on training windows shows every layer at
  ~0.2-0.3 quantisation steps of RMSE (no pathological layer); on validation, 512 vs 2048
  calibration windows, balanced or random, change nothing (96.4 / 96.3 / 96.2 / 96.2 %).
  Training-only activation noise as a stand-in for int8 rounding
  (`model_options={"quant_noise": s}` of tiny_dscnn) gave validation int8 accuracy / int8-Keras
  agreement of 96.18 % / 96.45 % (none), 95.57 % / 96.52 % (s = 0.03), 96.35 % /
  97.57 % (0.1), 95.22 % / 97.13 % (0.2), while Keras validation accuracy fell from 98.70 % to
  98.1-98.3 %: two windows' gain at best, so not adopted. What did fix it was the exporter's
  int8 input path (next item), not the training recipe.
* **int8 input path (har-export, every row; session 3).** The input-quantisation diagnosis
  above pointed at the int8 input tensor's single scale. har-export now converts the graph after
  the model's per-channel `Normalization` and ships its constants in the bundle (`input_norm`,
  applied by the runtime in float), and calibrates the int8 input on standardised windows
  clipped to +-`INPUT_CLIP_STD` standard deviations. Measured on the **validation** windows of
  the saved leaderboard models (no retraining; int8/Keras agreement, %): in-graph standardisation
  (before) / float standardisation, no clip / clip 3 / 4 / 5 / 8 sigma:
  har6-acc_gyro s0 96.44 / 99.39 / 99.83 / 99.83 / 99.65 / 99.57; s2 95.13 / - / 99.65 / 99.48 /
  99.74 / 98.87; hapt12-acc_gyro s0 97.39 / 99.49 / 99.71 / 99.57 / 99.57 / 99.20; har6-acc s1
  98.09 / - / 99.13 / 99.30 / 99.04 / 99.04; seed-body s0 51.95 / 71.94 / 85.58 / 84.01 / 83.49 /
  77.24. Mean over the first four runs: 99.58 (3), 99.55 (4), 99.50 (5), 99.17 (8), so
  `INPUT_CLIP_STD = 3`. The leaderboard records were then re-exported and re-scored with
  `--reexport` (the same trained weights). Also tried on validation, not adopted: activation
  noise 0.1 (`quant_noise`) on the acc6-int8-hapt12 recipe with the new export path, agreement
  99.86 % vs 99.71 %, but Keras validation macro-F1 0.816 vs 0.841.
* **hapt12 rows (presets `acc3-int8-hapt12`, `acc6-int8-hapt12`).** Searched on hapt12,
  acc + gyro, validation subjects 17, 21, 26, seed 0 (candidates `h12_*` below; validation
  macro-F1, the row's metric). The transfer of `acc6-int8` reached 0.788; weighting classes
  inversely to their training frequency (`--class-weight`: the six transitions are ~1 % of
  the windows each) 0.841, so both hapt12 presets are the int8 recipe plus class weights.
  Twice as many training windows by time shift (`--train-hop 32`) on top gave 0.841 again at
  twice the cost, so it was not adopted. The acc-only hapt12 preset carries the same change
  over without its own search.
* **Leave-subjects-out 5-fold CV for har6-acc.** The three validation subjects are easy (98 %
  validation vs ~91.5 % test), so later har6-acc candidates were compared by
  `har-train fit --preset acc3-int8 [change] --kfold 5` over the 21 non-test subjects (fold
  validation accuracy, Keras): acc3-int8 0.9449 ± 0.0344 (folds 0.928, 0.965, 0.997, 0.940,
  0.895); with `--model tiny_dscnn_posture` (the window's mean orientation joined to the pooled
  features, aimed at sitting vs standing) 0.9388 ± 0.0402 (0.929, 0.969, 1.000, 0.895, 0.901);
  with `--train-hop 32` 0.9476 ± 0.0339 (0.928, 0.976, 0.999, 0.920, 0.915). Neither was
  adopted: the posture branch is worse, and the denser windows gain 0.3 pt (3 of 5 folds),
  far less than the fold-to-fold spread, at twice the training time.
* **Seed noise, then seed ensembles (session 4; 5-fold CV as above, Keras fold validation
  accuracy; each fold run is paired with the same seed's baseline).** Fold figures move by
  ~1 pt between seeds of one recipe, so every candidate was run with two seeds.
  `--acc-mode body_gravity` on har6-acc: 0.9473 vs 0.9449 (seed 0), 0.9368 vs 0.9364 (seed 1);
  on har6-acc_gyro: 0.9588 vs 0.9519 (seed 0, better on all five folds), 0.9533 vs 0.9591
  (seed 1), i.e. 0.9561 vs 0.9555 over both seeds: not adopted (seed 0 alone would have
  misled). Wider tiny_dscnn (filters 40/56/72, 11,870 params) on har6-acc: 0.9415 vs 0.9449,
  not adopted. Distillation (`--teacher`, weight 0.5, fold-matched teachers) on har6-acc_gyro:
  seed-2 student of seeds 0 + 1: 0.9538 vs 0.9524 (folds -0.8, -0.2, 0.0, +2.4, -0.7 pt);
  seed-3 student of seeds 0 + 1 + 2, stopped after two folds at 0.9476 / 0.9772 vs 0.9488 /
  0.9809: not adopted, the student does not keep the teachers' gain (likely because teachers
  scored on their own training windows give targets close to the labels; out-of-fold teacher
  predictions would be the next thing to try). The mean softmax of
  seeds did: har6-acc seeds 0 + 1 0.9451 vs 0.9406 for the single runs; har6-acc_gyro seeds
  0 + 1 0.9603 vs 0.9555, seeds 0 + 1 + 2 0.9606 vs 0.9545 (folds 0.953 / 0.979 / 0.999 /
  0.933 / 0.939 vs single-run means 0.944 / 0.979 / 0.998 / 0.924 / 0.927; never worse on a
  fold). **har6-acc_gyro is therefore three seeds of `acc6-int8` merged by `har-train
  ensemble`** (seeds s, s + 100, s + 200 for leaderboard seed s; that row has no size target).
  har6-acc keeps one model: three would triple its ~28 KB int8 file past the 32 KB target.
  (The hapt12 rows followed; next item.)
* **Seed ensembles for the hapt12 rows (session 4, validation subjects 17, 21, 26 only).** The
  mean softmax of three of the five saved leaderboard models of each hapt12 row, validation
  macro-F1 (ensemble vs mean of its three members), seeds 0+1+2 / 1+2+3 / 2+3+4 / 0+3+4:
  hapt12-acc 0.848 vs 0.816, 0.830 vs 0.813, 0.830 vs 0.801, 0.820 vs 0.798; hapt12-acc_gyro
  0.840 vs 0.833, 0.863 vs 0.835, 0.866 vs 0.828, 0.849 vs 0.829 (better in all eight). Both
  hapt12 rows are therefore three seeds of their preset, like har6-acc_gyro (no size target).
* **int8 calibration for the hapt12 rows (session 4, validation windows of the ten saved
  hapt12 models).** 512 vs 2048 calibration windows, clip 3 vs 4 sigma, mean int8/Keras
  agreement: hapt12-acc 99.55 / 99.61 / 99.55 / 99.52 % (512/3, 2048/3, 512/4, 2048/4),
  hapt12-acc_gyro 99.71 / 99.68 / 99.70 / 99.71 %: differences of about one window in 1,400,
  so har-export's defaults stay.
* **Input clip for hapt12-acc_gyro (session 5; tried, not adopted).** Diagnosis (no choice
  made from it): of the int8/Keras disagreements of the saved seed-4 model on the test windows,
  28 of 31 are windows with a standardised value beyond the int8 input's +-3 sigma (41 % of
  all windows); against the same Keras model fed inputs clipped at +-3 sigma, agreement was
  99.75 % instead of 99.13 %. Candidate: `har-train --input-clip 3` (the model saturates its
  own input, so float and int8 clip alike). Rule, written before the runs: adopt iff over the
  five leaderboard seeds (three-member ensembles, validation subjects 17, 21, 26) mean
  int8/Keras agreement does not fall and mean Keras macro-F1 falls by at most 0.01. Retrained
  with the clip (15 member runs), seeds 0-4, macro-F1 0.813 / 0.835 / 0.834 / 0.830 / 0.818
  vs 0.827 / 0.855 / 0.850 / 0.847 / 0.851 (mean 0.826 vs 0.846), agreement 99.86 / 99.57 /
  99.93 / 98.91 / 99.93 % vs 99.64 / 99.49 / 99.71 / 99.78 / 99.71 % (mean 99.64 vs 99.67):
  not adopted on both counts. Inserting the same clip into the saved ensembles after training
  kept macro-F1 (mean 0.847 vs 0.846) but its int8 agreement fell to 99.78 / 98.48 / 99.42 /
  98.99 / 99.20 %: at this level int8 agreement swings by a point with small graph changes.
  `--input-clip` stays available; no preset uses it.
* **Window context for the hapt12 rows (session 6, validation subjects 17, 21, 26).** The
  hapt12 confusions (sit_to_lie vs stand_to_lie, lie_to_sit vs lie_to_stand, sitting vs
  standing) are pairs that differ in what came before the window. Candidate: `har-train
  --context C`, the C samples before each 128-sample window fed to the model too (the labelled
  windows stay the same; PREPROCESSING.md). Screen, one model, seed 0, Keras validation
  macro-F1: acc + gyro, no context (the saved leaderboard member) 0.841, 128 samples before
  0.879, 64 before and 64 after (needs look-ahead, so not a candidate) 0.868, 256 before 0.831;
  accelerometer only, 0.813 vs 0.835 with 128 before. Rule, written after that screen and before
  any other run: adopt `--context 128` if, for both rows, the mean over seeds 0 and 100 beats
  the paired saved runs by >= 0.01 and the mean single-model int8/Keras validation agreement
  is >= 99.5 %. Seed 100: acc + gyro 0.872 vs 0.830, accelerometer 0.859 vs 0.787 (mean gains
  +0.040 and +0.047). Agreement: accelerometer 99.57 / 99.71 % (saved runs 99.57 / 99.86 %);
  acc + gyro 99.20 / 98.70 % (saved 99.71 / 99.64 %). The rule as written was all-or-nothing
  and acc + gyro fails its agreement condition; the accelerometer row meets every condition on
  its own, so **`acc3-int8-hapt12` now has `context 128`** and `acc6-int8-hapt12` does not
  (its int8 file would drift further from parity; the rule was split by row after the runs,
  which is stated here rather than hidden). Experiment scripts: /work/cache/exp6 (ctx.py,
  measure.py), outside the repository. For har6-acc (sitting vs standing is its main error),
  the rule written with the one above: adopt `--context 128` in `acc3-int8` iff 5-fold CV
  (`--kfold 5`, seeds 0 and 1) beats the baseline's 0.9449 / 0.9364 by >= 0.005 on average with
  no seed worse. It gave 0.9393 (folds 0.931, 0.965, 1.000, 0.915, 0.885) and 0.9448 (0.931,
  0.962, 1.000, 0.926, 0.904): +0.0014 on average and seed 0 worse, so `acc3-int8` has none.
* **Per-channel int8 input ranges (session 7; tried, not adopted).** After standardisation the
  gyroscope channels pass the int8 input's +-3 sigma in 24-32 % of hapt12 training windows
  (99.9th percentile of |z| 5.6-6.5; accelerometer 2.7-3.2), and session 5 traced most
  acc + gyro disagreements to such windows. Candidate: `har-export --input-range-percentile P`
  (export/input_ranges.py): channel c is divided by s_c = max(1, q_c / 3) more in the float
  standardisation and the first convolution's weights for channel c are multiplied by s_c, so
  the float model is unchanged and channel c saturates at +-3 s_c sigma (q_c: the P-th
  percentile of |z| over the calibration windows). Rule, written before measuring: adopt the
  better P of 99.9 / 99.99 iff mean int8/Keras agreement on the validation plus non-calibration
  training windows (8,194 hapt12 / 6,631 har6 per model; no test subject) of the 20 saved
  leaderboard models rises by >= 0.05 pt and no row's mean falls by > 0.05 pt. Means (none /
  99.9 / 99.99): har6-acc 99.879 / 99.879 / 99.879 (no channel widened), har6-acc_gyro 99.867
  / 99.765 / 99.665, hapt12-acc 99.834 / 99.831 / 99.861, hapt12-acc_gyro 99.766 / 99.802 /
  99.702; all 20: 99.837 / 99.820 / 99.777. Not adopted: har-export keeps one input range by
  default and the fold stays an option. The widened first-layer weights lose int8 resolution
  of their own. A follow-up written with the rule (lift the context-128 acc + gyro models of
  the window-context item to >= 99.5 % mean validation agreement) also failed: seed 0 99.20 ->
  100.00 %, seed 100 98.70 -> 98.84 %, mean 99.42 %. Rerun: `python scripts/int8_agreement.py
  runs/leaderboard/ROW/sS/run --input-range-percentile 0 --input-range-percentile 99.9
  --input-range-percentile 99.99` (the rule: /work/cache/exp7/RULE.md, outside the repository).
* **Calibration-draw search (session 8; tried, not adopted).** Diagnosis first (no choice made
  from it): snapping every kernel of the hapt12-acc seed-1 ensemble to its int8 per-channel
  grid changed 0.05 % of its Keras predictions and left int8/Keras agreement on validation plus
  unused training windows at 99.829 %, so weight rounding is not where the disagreements come
  from; activation ranges are, and those come from the 512 calibration windows, a seeded
  class-balanced draw. Candidate: export K = 5 draws and keep the one whose int8 model agrees
  best with Keras on the validation windows. Rule, written before measuring
  (/work/cache/exp8/RULE.md, outside the repository): over the 10 saved hapt12 models, pick
  each model's draw by validation agreement (ties: lowest seed) and judge it on the training
  windows no draw uses (5,636 per model); adopt iff the picked draws beat seed 0 there by
  >= 0.05 pt on average and on >= 7 of 10 models. Disagreements (validation of 1,380 /
  training of 5,636) for draws 0-4: hapt12-acc s0 2/5, 1/5, 6/3, 5/4, 8/4; s1 2/9, 1/13, 2/8,
  2/6, 2/4; s2 5/12, 3/14, 3/11, 6/12, 6/11; s3 4/17, 4/9, 4/4, 3/15, 2/7; s4 2/6, 2/8, 3/4,
  2/7, 1/4; hapt12-acc_gyro s0 5/6, 5/16, 5/10, 5/9, 4/10; s1 7/7, 5/10, 7/7, 6/7, 7/12; s2
  4/20, 4/20, 5/23, 6/30, 4/26; s3 3/14, 4/16, 5/15, 4/12, 6/14; s4 4/9, 3/8, 4/14, 2/6, 1/6.
  The picked draws gain +2 windows in 56,360 (0.004 pt), better on 3 models, worse on 4: the
  draw moves agreement by up to 0.2 pt, but validation cannot tell which draw is better, so
  har-export keeps one draw (seed 0). Rerun: `python scripts/int8_agreement.py
  runs/leaderboard/ROW/sS/run --seed 0 --seed 1 --seed 2 --seed 3 --seed 4`.
* **Tensor names (session 8).** har-export now strips tensor names and the signature from the
  .tflite files (EXPORT.md): outputs are bit-identical, so every score below is unchanged by
  the re-export, and the int8 files are 11-22 % smaller (har6-acc 28,104 -> 23,560 bytes,
  seed 0).
* **seed-body** is the tutorial baseline as published (`--preset seed --acc-mode body`), not
  tuned.
* Early stopping, checkpoint and learning-rate schedule watch validation loss only; int8
  calibration uses 512 class-balanced training windows (har-export's default)."""

#: One entry per candidate: what changed against the old 40-epoch acc3-int8 recipe, params,
#: epochs run (best epoch), validation accuracy and macro-F1, int8/Keras agreement on validation.
EVIDENCE: Tuple[Dict[str, Any], ...] = (
    {"name": "int8_base", "change": "old acc3-int8 (tiny_dscnn, 40 epochs, no smoothing)",
     "params": 8950, "epochs": 33, "best_epoch": 23, "val_acc": 0.9522, "val_f1": 0.9600,
     "val_int8_agreement": 0.9679, "int8_bytes": 29424},
    {"name": "int8_bg", "change": "acc_mode body_gravity (6 accelerometer-derived channels)",
     "params": 9718, "epochs": 29, "best_epoch": 19, "val_acc": 0.9783, "val_f1": 0.9822,
     "val_int8_agreement": 0.9896, "int8_bytes": 30200},
    {"name": "int8_ls", "change": "label smoothing 0.1, 60-epoch cosine, patience 15 (chosen)",
     "params": 8950, "epochs": 34, "best_epoch": 19, "val_acc": 0.9818, "val_f1": 0.9832,
     "val_int8_agreement": 0.9974, "int8_bytes": 29424},
    # hapt12, acc + gyro: validation macro-F1 is the row's metric; these were not exported.
    {"name": "h12_transfer", "change": "hapt12 acc+gyro: acc6-int8 unchanged",
     "params": 10108, "epochs": 33, "best_epoch": 18, "val_acc": 0.9623, "val_f1": 0.7877},
    {"name": "h12_cw", "change": "hapt12 acc+gyro: + class weights (chosen)",
     "params": 10108, "epochs": 60, "best_epoch": 47, "val_acc": 0.9580, "val_f1": 0.8406},
    {"name": "h12_cw_th32", "change": "hapt12 acc+gyro: + class weights + train hop 32",
     "params": 10108, "epochs": 33, "best_epoch": 18, "val_acc": 0.9580, "val_f1": 0.8407},
)
