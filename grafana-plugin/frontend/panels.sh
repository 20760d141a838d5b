#!/usr/bin/env bash
# The forecast as a time-series panel draws it, end to end:
#   1. the Go harness starts the plugin as Grafana does, sends each panel's queries with the SDK client
#      and writes the JSON Grafana's /api/ds/query would return (tests/conformance: TestPanelFrames);
#   2. webpack bundles screenshots/panel.tsx (@grafana/data + @grafana/ui's TimeSeries);
#   3. Jest drives Debian's headless Chromium over that page and checks what is drawn (panels/).
# Installs Debian's chromium (and fonts-inter) when missing (as root, like the tests install Prometheus).
# TOTO_PANEL_SCREENSHOTS=DIR keeps each panel's PNG there (screenshot.sh: screenshots/panels).
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)

# Debian's chromium, and Inter (Grafana's font; the panels render without it, in a fallback font).
missing=()
[ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
{ command -v fc-list >/dev/null 2>&1 && fc-list | grep -q '/Inter'; } || missing+=(fonts-inter)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "panels.sh: installing Debian's ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
      --no-install-recommends "${missing[@]}" >/dev/null
  elif [[ " ${missing[*]} " == *" chromium "* ]]; then
    echo "panels.sh: chromium is not installed and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
fi

./deps.sh

frames=${TOTO_PANEL_FRAMES_DIR:-$repo/var/panels}
mkdir -p "$frames"
rm -f "$frames"/*.json
TOTO_PANEL_FRAMES_DIR=$frames TOTO_CONFORMANCE_INSTALLS=0 bash "$repo/tests/conformance/run.sh" -run '^TestPanelFrames$' -timeout 5m

npx --no-install webpack --config screenshots/webpack.config.js --env page=panel

TOTO_PANEL_FRAMES_DIR=$frames timeout 600 npx --no-install jest --ci -c jest.panels.config.js
