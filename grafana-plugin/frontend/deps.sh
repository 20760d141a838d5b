#!/usr/bin/env bash
# Installs the frontend's npm packages from package-lock.json when node_modules is missing or was
# installed from a different lock file (build.sh and panels.sh run it). Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")"

lock_hash() { node -e "process.stdout.write(require('crypto').createHash('sha256').update(require('fs').readFileSync('package-lock.json')).digest('hex'))"; }

stamp=node_modules/.toto-lock-sha256
if [[ ! -f $stamp || "$(cat "$stamp")" != "$(lock_hash)" ]]; then
  echo "frontend: npm ci (node_modules missing or stale)"
  npm ci --no-audit --no-fund
  lock_hash > "$stamp"
fi
