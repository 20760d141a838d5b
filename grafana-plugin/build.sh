#!/bin/sh
# Assemble the installable Grafana plugin:
#   grafana-plugin/dist/                                      the plugin folder (mount or copy it)
#   grafana-plugin/toto-forecast-datasource-<v>.linux_amd64.zip   the same, zipped Grafana's way
#
# The launchers exec the Python interpreter PYTHON (default: the project's .venv), written into
# them as an absolute path because Grafana >= 12.4 starts plugins without PATH.
# Environment: PYTHON, VERSION (default: pyproject.toml's), FRONTEND=skip to build backend-only.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
id=toto-forecast-datasource
executable=gpx_toto_forecast
dist=$here/dist

python=${PYTHON:-$repo/.venv/bin/python}
case $python in /*) ;; *) python=$(pwd)/$python ;; esac
[ -x "$python" ] || echo "build.sh: warning: $python does not exist yet; the plugin will not start until it does" >&2

version=${VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n 1)}
[ -n "$version" ] || { echo "build.sh: no version in pyproject.toml; set VERSION" >&2; exit 1; }
today=$(date -u +%Y-%m-%d)

rm -rf "$dist"
mkdir -p "$dist/img" "$dist/provisioning"
sed -e "s/%VERSION%/$version/" -e "s/%TODAY%/$today/" "$here/plugin.json" >"$dist/plugin.json"
cp "$here"/img/* "$dist/img/"
cp -R "$here/provisioning/." "$dist/provisioning/"
cp "$here/README.md" "$dist/README.md"
[ -f "$repo/LICENSE" ] && cp "$repo/LICENSE" "$dist/LICENSE"

# The same shell script serves every architecture: Grafana picks <executable>_<os>_<arch>.
escaped=$(printf '%s' "$python" | sed -e 's/[\\&|]/\\&/g' -e "s/'/'\\\\''/g")
for arch in amd64 arm64; do
  sed "s|@PYTHON@|$escaped|" "$here/launcher/launcher.sh.in" >"$dist/${executable}_linux_$arch"
  chmod 0755 "$dist/${executable}_linux_$arch"
done

# Frontend (module.js): optional. Without it the backend still loads (Grafana logs a warning) and
# provisioned data sources, /api/ds/query and provisioned alert rules work; the editors do not.
frontend=$here/frontend
if [ "${FRONTEND:-}" != skip ] && [ ! -f "$frontend/dist/module.js" ] && [ -f "$frontend/build.sh" ]; then
  bash "$frontend/build.sh" || echo "build.sh: warning: the frontend build failed" >&2
fi
if [ -f "$frontend/dist/module.js" ] && [ "${FRONTEND:-}" != skip ]; then
  cp "$frontend/dist/module.js" "$dist/module.js"
  [ -f "$frontend/dist/module.js.map" ] && cp "$frontend/dist/module.js.map" "$dist/"
else
  echo "build.sh: warning: no frontend (grafana-plugin/frontend/dist/module.js); building a backend-only plugin" >&2
fi

# Grafana's archive convention: <id>-<version>.<os>_<arch>.zip holding a folder named <id>.
zipfile=$here/$id-$version.linux_amd64.zip
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$dist" "$stage/$id"
rm -f "$zipfile"
if command -v zip >/dev/null 2>&1; then
  (cd "$stage" && zip -qr -X "$zipfile" "$id")
else
  (cd "$stage" && "$python" -m zipfile -c "$zipfile" "$id")
fi

echo "built $dist"
echo "built $zipfile"
