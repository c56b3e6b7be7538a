#!/usr/bin/env bash
# Build the optional environments `python -m scripts.bench` compares against (git-ignored folders):
#   .venv-onnx    TensorFlow + tf2onnx + onnxruntime (the ONNX Runtime column)
#   .venv-litert  ai-edge-litert, no TensorFlow (its memory and latency columns)
# The TensorFlow venv (.venv) and the tflite-runtime venv (.venv-rt) come from the README's
# two commands.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if [ ! -x .venv-onnx/bin/python ]; then
  "$py" -m venv .venv-onnx
  .venv-onnx/bin/python -m pip install -q "numpy<2" "tensorflow-cpu==2.18.1" "keras==3.15.1" \
    "tf2onnx==1.17.0" "onnx==1.22.0" "onnxruntime==1.32.0"
  .venv-onnx/bin/python -m pip install -q --no-deps -e .
fi
if [ ! -x .venv-litert/bin/python ]; then
  "$py" -m venv .venv-litert
  .venv-litert/bin/python -m pip install -q "numpy<2" "ai-edge-litert==2.3.0" click
  .venv-litert/bin/python -m pip install -q --no-deps -e .
fi
echo "ready: .venv-onnx .venv-litert"
