#!/usr/bin/env bash
# Create (or reuse) a virtual environment with har-edge and the given extras installed.
# Usage: scripts/ensure_venv.sh VENV_DIR EXTRAS
# A stamp of setup.cfg's hash makes reruns instant while a changed dependency list reinstalls.
set -euo pipefail
venv=$1
extras=$2
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
stamp="$venv/.har-edge-stamp"
want="$(sha256sum "$root/setup.cfg" | cut -c1-16)-$extras"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up $venv with har-edge[$extras] (first run downloads TensorFlow, ~1.5 GB)" >&2
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >&2
"$venv/bin/python" -m pip install -q -e "$root[$extras]" >&2
echo "$want" > "$stamp"
