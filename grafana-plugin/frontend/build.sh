#!/usr/bin/env bash
# Production build of the frontend: dist/module.js (+ .map), after deps.sh has installed the npm packages
# when node_modules is missing or stale. Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")"

./deps.sh

echo "frontend: typecheck"
npx --no-install tsc --noEmit
echo "frontend: webpack production build"
npx --no-install webpack --config webpack.config.js --env production
ls -l dist/module.js
