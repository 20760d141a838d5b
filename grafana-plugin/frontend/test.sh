#!/usr/bin/env bash
# Fresh build (deps, typecheck, webpack), then the unit tests and the AMD-load test of dist/module.js.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
npx --no-install jest --ci "$@"
