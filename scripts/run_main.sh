#!/usr/bin/env bash
# The main job, end to end on the embedded default data (HAPT): train the default preset,
# evaluate it on the UCI HAR test subjects, export TFLite variants through the parity gate, and
# replay a held-out subject through the exported bundle with the TF-free runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_venv.sh .venv train,runtime,test
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow}
out=${HAR_EDGE_RUN:-runs/main}
bin=.venv/bin
preset=${HAR_EDGE_PRESET:-acc3-int8}
"$bin/har-train" fit --preset "$preset" --out "$out" --overwrite
if [ "${HAR_EDGE_CONTEXT:-0}" = 1 ]; then
  # The learned temporal context (docs/TRAINING.md): out-of-fold models of the same recipe,
  # exported, then a GRU head over their int8 window outputs; about 30 more minutes on 2 cores.
  "$bin/har-train" fit --preset "$preset" --kfold 5 --out "$out-kfold" --overwrite
  for fold in "$out-kfold"/fold*/; do
    "$bin/har-export" convert "${fold}model.keras" --out "${fold}bundle" --variants float32,int8 \
      --overwrite || [ $? = 7 ]  # exit 7: an int8 file under the gate is still written
  done
  "$bin/har-train" context "$out" --oof "$out-kfold" --oof-variant int8 --overwrite
  "$bin/har-export" convert "$out/model.keras" --out "$out/bundle" --context "$out/context" \
    --overwrite
else
  "$bin/har-export" convert "$out/model.keras" --out "$out/bundle" --overwrite
fi
"$bin/har-train" to-csv hapt "$out/subject2" --subject 2
"$bin/har-runtime" replay "$out/bundle" "$out/subject2" --fast --png "$out/replay_subject2.png"
echo
echo "report:  $out/metrics.json, $out/confusion_matrix.png, $out/training_curves.png"
echo "bundle:  $out/bundle (bundle.json + one .tflite per variant; parity in bundle.json)"
echo "replay:  $out/replay_subject2.png"
