#!/usr/bin/env bash
# Renders both editors (Grafana dark theme, stubbed backend) in headless Chromium on 127.0.0.1 and saves
# screenshots/query-editor.png, query-editor-grafana.png (source Grafana data source) and config-editor.png,
# then the time-series panels of the browser test (panels.sh) as screenshots/panels/*.png. Needs Debian's
# chromium (apt-get install chromium; panels.sh installs it as root).
set -euo pipefail
cd "$(dirname "$0")"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
PORT=${PORT:-8765}

./build.sh >/dev/null
npx --no-install webpack --config screenshots/webpack.config.js --env page=harness
echo '<!doctype html><meta charset="utf-8"><title>Toto Forecast editors</title><div id="root"></div><script src="harness.js"></script>' \
  > .screenshot-build/harness/index.html

node -e "
const http = require('http'), fs = require('fs'), path = require('path');
const root = path.resolve('.screenshot-build/harness');
http.createServer((req, res) => {
  const file = path.join(root, path.normalize(decodeURIComponent(req.url.split('?')[0])).replace(/^\/+$/, '/index.html'));
  if (!file.startsWith(root) || !fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'Content-Type': file.endsWith('.html') ? 'text/html' : 'text/javascript' });
  fs.createReadStream(file).pipe(res);
}).listen($PORT, '127.0.0.1');
" &
server=$!
trap 'kill $server' EXIT
sleep 1

profile=$(mktemp -d)
shoot() { # name hash height
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
    --window-size=1100,"$3" --virtual-time-budget=8000 --screenshot="screenshots/$1.png" \
    "http://127.0.0.1:$PORT/index.html#$2" 2>/dev/null
  ls -l "screenshots/$1.png"
}
shoot query-editor query 420
shoot query-editor-grafana grafana 520
shoot config-editor config 1400
rm -rf "$profile"

TOTO_PANEL_SCREENSHOTS=$PWD/screenshots/panels ./panels.sh
ls -l screenshots/panels/*.png
