#!/usr/bin/env bash
# The test suite, in two environments:
#  1. .venv     — everything (TensorFlow/Keras for train and export, plus the runtime tests);
#  2. .venv-rt  — only numpy<2 + tflite-runtime 2.14 and the BUILT wheel, to prove the runtime
#                 never needs TensorFlow or Keras. It runs tests/runtime.
# Extra arguments go to the first pytest run (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_venv.sh .venv train,runtime,test
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

rm -rf build/wheel && .venv/bin/python -m pip wheel -q --no-deps -w build/wheel . >/dev/null
py=${PYTHON:-python3}
if [ ! -x .venv-rt/bin/python ]; then
  "$py" -m venv .venv-rt
  .venv-rt/bin/python -m pip install -q --upgrade pip
fi
.venv-rt/bin/python -m pip install -q --force-reinstall --no-deps build/wheel/har_edge-*.whl
.venv-rt/bin/python -m pip install -q "numpy<2" "tflite-runtime==2.14.0" click pytest hypothesis
if .venv-rt/bin/python -c "import tensorflow" 2>/dev/null || .venv-rt/bin/python -c "import keras" 2>/dev/null; then
  echo "runtime venv must not contain TensorFlow or Keras" >&2; exit 1
fi
# Run from a neutral directory so the installed wheel, not the source tree, is what gets tested.
cd tests
../.venv-rt/bin/python -c 'import har_runtime, sys; f = har_runtime.__file__; print("runtime venv tests", f); sys.exit("site-packages" not in f)'
../.venv-rt/bin/python -m pytest -q -p no:cacheprovider -c ../setup.cfg --rootdir=.. runtime
