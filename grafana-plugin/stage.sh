#!/bin/sh
# Copy the Grafana plugin's files into the Python package (server/toto_datasource/plugin_assets/,
# git-ignored), where the wheel carries them as package data for `toto-datasource install-plugin`:
# plugin.json (version filled in at install), module.js (+ map) from the frontend build, the logo,
# the provisioning examples, README.md and the launcher templates.
# FRONTEND=skip stages without module.js (a backend-only plugin; `make dist` never skips it).
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
out=$repo/server/toto_datasource/plugin_assets

if [ "${FRONTEND:-}" != skip ] && [ ! -f "$here/frontend/dist/module.js" ]; then
  bash "$here/frontend/build.sh"
fi

rm -rf "$out"
mkdir -p "$out/launcher"
cp "$here/plugin.json" "$here/README.md" "$out/"
cp -R "$here/img" "$here/provisioning" "$out/"
cp "$here/launcher/host.sh.in" "$here/launcher/sidecar.sh" "$out/launcher/"
if [ "${FRONTEND:-}" != skip ]; then
  cp "$here/frontend/dist/module.js" "$out/"
  [ -f "$here/frontend/dist/module.js.map" ] && cp "$here/frontend/dist/module.js.map" "$out/"
fi
echo "staged $out"
