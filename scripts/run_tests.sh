#!/usr/bin/env bash
# The test suite, in three environments:
#  1. .venv        — everything (TensorFlow/Keras for train and export, plus the runtime tests);
#  2. .venv-rt     — only numpy<2 + tflite-runtime 2.14 and the BUILT wheel, to prove the runtime
#                    never needs TensorFlow or Keras: runs tests/runtime;
#  3. .venv-litert — the same with ai-edge-litert instead (HAR_EDGE_INTERPRETER=ai_edge_litert).
# Extra arguments go to the first pytest run (e.g. -m "not slow").
# The MQTT tests run a real mosquitto broker on 127.0.0.1: it is installed here when missing and
# this runs as root (otherwise those tests skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q && apt-get install -y -q mosquitto >/dev/null
  else
    echo "mosquitto is missing (apt-get install mosquitto): the MQTT tests will skip" >&2
  fi
fi
scripts/ensure_venv.sh .venv train,runtime,test,mqtt
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

rm -rf build/wheel && .venv/bin/python -m pip wheel -q --no-deps -w build/wheel . >/dev/null
py=${PYTHON:-python3}

# runtime_tests VENV INTERPRETER PACKAGE...: install the wheel + PACKAGEs, run tests/runtime.
runtime_tests() {
  local venv=$1 interpreter=$2
  shift 2
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
  fi
  "$venv/bin/python" -m pip install -q --force-reinstall --no-deps build/wheel/har_edge-*.whl
  "$venv/bin/python" -m pip install -q "$@" click 'tomli>=1.1; python_version < "3.11"' pytest hypothesis \
    "paho-mqtt>=2.0,<3"
  if "$venv/bin/python" -c "import tensorflow" 2>/dev/null || "$venv/bin/python" -c "import keras" 2>/dev/null; then
    echo "$venv must not contain TensorFlow or Keras" >&2; exit 1
  fi
  # Run from a neutral directory so the installed wheel, not the source tree, is what gets tested.
  (cd tests
   "../$venv/bin/python" -c 'import har_runtime, sys; f = har_runtime.__file__; print("runtime tests with", sys.argv[1], f); sys.exit("site-packages" not in f)' "$interpreter"
   HAR_EDGE_INTERPRETER=$interpreter "../$venv/bin/python" -m pytest -q -p no:cacheprovider -c ../setup.cfg --rootdir=.. runtime)
}

runtime_tests .venv-rt tflite_runtime "numpy<2" "tflite-runtime==2.14.0"
runtime_tests .venv-litert ai_edge_litert "numpy<2" "ai-edge-litert==2.3.0"
