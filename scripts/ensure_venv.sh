#!/usr/bin/env bash
# Create (or reuse) a virtual environment with har-edge and the given extras installed.
# Usage: scripts/ensure_venv.sh VENV_DIR EXTRAS
# A stamp of setup.cfg's hash makes reruns instant (and silent) while a changed dependency list
# reinstalls. A first install says what it does, one line per step and one per download of 1 MB
# or more (pip's full log is hundreds of lines; its warnings and errors are shown as they come).
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

# pip's stdout, less the small print: "Downloading"/"Using cached" lines of 1 MB or more, and
# the start of the install step. awk, not grep: no matching line must not fail the pipeline.
show_big_steps() {
  awk '/^ *(Downloading|Using cached) .*\([0-9.]+ (MB|GB)\)$/ { sub(/^ +/, ""); print "  " $0 }
       /^Installing collected packages/ { print "  installing the downloaded packages..." }
       { fflush() }'
}

echo "setting up $venv with har-edge[$extras] (a first run downloads TensorFlow, ~1.5 GB)" >&2
echo "[1/3] creating the virtual environment" >&2
"$py" -m venv "$venv"
echo "[2/3] upgrading pip" >&2
"$venv/bin/python" -m pip install -q --upgrade pip >&2
echo "[3/3] installing har-edge[$extras] and its dependencies" >&2
"$venv/bin/python" -m pip install --progress-bar off -e "$root[$extras]" | show_big_steps >&2
echo "$want" > "$stamp"
echo "$venv ready ($(du -sh "$venv" | cut -f1))" >&2
