"""hclog-compatible JSON logs on stderr, one object per line, as go-plugin's host parses them.

`@timestamp` must have exactly 6 fractional digits or Grafana treats the whole line as plain
text (go-plugin's hclog reader). Extra key/values go in `extra={"kv": {...}}`.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
           logging.CRITICAL: "error"}


class HclogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry: dict[str, object] = {
            "@level": _LEVELS.get(record.levelno, "info"),
            "@message": record.getMessage(),
            "@timestamp": stamp,
            "@module": record.name,
        }
        kv = getattr(record, "kv", None)
        if isinstance(kv, dict):
            for key, value in kv.items():
                entry.setdefault(str(key), value)
        if record.exc_info:
            entry["error"] = "".join(traceback.format_exception(*record.exc_info)).strip()
        return json.dumps(entry, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HclogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at info: noise in Grafana's log, and a URL may carry a token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
