#!/bin/sh
# The plugin folder and archives from this checkout (`make plugin`), written by the same command a
# user runs after `pip install` (toto-datasource install-plugin):
#   grafana-plugin/dist/toto-forecast-datasource/           a folder for this host (copy or mount it)
#   grafana-plugin/dist/toto-forecast-datasource-<v>.linux_<arch>.zip   the sidecar archives
#
# PYTHON: the interpreter the folder's launchers exec (default: the project's .venv).
# FRONTEND=skip builds a backend-only plugin.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
venv_python=$repo/.venv/bin/python
python=${PYTHON:-$venv_python}
case $python in /*) ;; *) python=$(pwd)/$python ;; esac

if [ "${FRONTEND:-}" != skip ] && [ ! -f "$here/frontend/dist/module.js" ]; then
  bash "$here/frontend/build.sh" || echo "build.sh: warning: the frontend build failed" >&2
fi
rm -rf "$here/dist"
install() { PYTHONPATH="$repo/server" "$venv_python" -m toto_datasource install-plugin "$@"; }
install "$here/dist" --python "$python" >/dev/null
install "$here/dist" --zip >/dev/null
echo "built $here/dist/toto-forecast-datasource (launchers exec $python) and the sidecar zips:"
ls "$here/dist"/*.zip
