#!/usr/bin/env bash
# Install har-runtime as a systemd service on Raspberry Pi OS (Bookworm 64-bit) or any
# systemd Linux with Python 3.9-3.11 (3.12+ uses ai-edge-litert). Re-running it upgrades the
# package, swaps in the new bundle atomically and reloads the running daemon.
#
#   sudo scripts/install_rpi.sh BUNDLE_DIR [--package SPEC] [--args "DAEMON ARGS"] [--no-start]
#
#   --package SPEC  what pip installs the [runtime] extra of (default: har-edge from PyPI; give
#                   "." or a wheel path to install this checkout)
#   --args ARGS     daemon flags written to /etc/default/har-runtime (only when that file
#                   does not exist yet); they override /etc/har-edge/har-runtime.toml, the
#                   settings file (a copy of scripts/har-runtime.toml, kept if it exists)
#   --no-start      install and enable, but do not start or reload
set -euo pipefail

PREFIX=/opt/har-edge
SERVICE_USER=har
UNIT=/etc/systemd/system/har-runtime.service
DEFAULTS=/etc/default/har-runtime
SETTINGS=/etc/har-edge/har-runtime.toml
DEFAULT_ARGS=""
# serve flags that became keys of the settings file (docs/RUNTIME.md)
MOVED='--(smoothing-k|min-confidence|hysteresis|max-devices|device-policy|device-buffer|max-line|max-connections|stats-interval)'
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "install_rpi.sh: $*" >&2; exit 1; }

bundle="" package="har-edge" args="$DEFAULT_ARGS" start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --package) [ $# -ge 2 ] || die "--package needs a value"; package="$2"; shift 2 ;;
    --args) [ $# -ge 2 ] || die "--args needs a value"; args="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$bundle" ] || die "only one BUNDLE_DIR"; bundle="$1"; shift ;;
  esac
done
[ -n "$bundle" ] || die "usage: sudo $0 BUNDLE_DIR [--package SPEC] [--args ARGS] [--no-start]"
for given in "$args" "$(cat "$DEFAULTS" 2>/dev/null || true)"; do
  if moved="$(grep -Eo -- "$MOVED" <<<"$given")"; then
    die "keys of $SETTINGS now (docs/RUNTIME.md): $(echo $moved); remove them from --args/$DEFAULTS"
  fi
done
[ -f "$bundle/bundle.json" ] || die "$bundle is not a bundle (no bundle.json)"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
command -v systemctl >/dev/null || die "systemd is required"
command -v python3 >/dev/null || die "python3 is required"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "Python >= 3.9 is required"
case "$(uname -m)" in
  aarch64|x86_64) ;;
  *) echo "warning: $(uname -m): tflite-runtime has no wheel here; use a 64-bit OS" >&2 ;;
esac
if [ -d "$package" ] || [ -f "$package" ]; then
  package="$(cd "$(dirname "$package")" && pwd)/$(basename "$package")"  # pip runs elsewhere
fi

echo "== system user and venv"
python3 -m venv --help >/dev/null 2>&1 || apt-get install -y python3-venv
id -u "$SERVICE_USER" >/dev/null 2>&1 || \
  useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
getent group dialout >/dev/null && usermod -a -G dialout "$SERVICE_USER"
mkdir -p "$PREFIX/bundles"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --upgrade --quiet pip
"$PREFIX/venv/bin/pip" install --upgrade --quiet "${package}[runtime]"

echo "== bundle"
stamp="$(date +%Y%m%d-%H%M%S)"
target="$PREFIX/bundles/$stamp"
cp -r "$bundle" "$target.partial"
# Verify every hash and open the recommended variant before the daemon can see it.
"$PREFIX/venv/bin/python" - "$target.partial" <<'EOF'
import sys
from har_runtime.bundle import load_bundle
bundle = load_bundle(sys.argv[1])
bundle.open()
print(f"bundle ok: {len(bundle.variants)} variants, recommended {bundle.recommended}")
EOF
mv "$target.partial" "$target"
chmod -R a+rX "$target"
ln -sfn "bundles/$stamp" "$PREFIX/bundle.new"
mv -T "$PREFIX/bundle.new" "$PREFIX/bundle"
[ -f "$HERE/../docs/RUNTIME.md" ] && install -m 644 "$HERE/../docs/RUNTIME.md" "$PREFIX/RUNTIME.md"

echo "== service"
mkdir -p "$(dirname "$SETTINGS")"
[ -f "$SETTINGS" ] || install -m 644 "$HERE/har-runtime.toml" "$SETTINGS"
[ -f "$DEFAULTS" ] || printf '# Arguments of har-runtime serve (see docs/RUNTIME.md)\nHAR_RUNTIME_ARGS="%s"\n' \
  "$args" > "$DEFAULTS"
install -m 644 "$HERE/har-runtime.service" "$UNIT"
systemctl daemon-reload
systemctl enable har-runtime.service
if [ "$start" -eq 1 ]; then
  if systemctl is-active --quiet har-runtime.service; then
    systemctl reload har-runtime.service   # SIGHUP: picks up the new bundle symlink
  else
    systemctl start har-runtime.service
  fi
  sleep 2
  systemctl --no-pager --lines=5 status har-runtime.service || true
fi
echo "done: settings in $SETTINGS, events in /var/log/har-edge/, logs: journalctl -u har-runtime -f"
