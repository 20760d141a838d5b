"""hclog-compatible JSON logs on stderr, one object per line, as go-plugin's host parses them.

`@timestamp` must have exactly 6 fractional digits or Grafana treats the whole line as plain
text (GRAFANA_PROTOCOL §1.5). Extra key/values go in `extra={"kv": {...}}`.

Every line passes `redact.RedactingFilter` (no configured secret, URL credential or query string
reaches Grafana's log), and third-party loggers that bring their own plain-text stream handler
(huggingface_hub adds one at import; torch adds its own and sets propagate=False) are given this
formatter and filter too, as is `logging.lastResort`: in issue 13 Hugging Face's retry messages
reached stderr as plain text when no checkpoint was local and there was no network.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

from ..redact import RedactingFilter

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
        if record.exc_text:  # rendered (and redacted) by RedactingFilter
            entry["error"] = record.exc_text.strip()
        elif record.exc_info:
            entry["error"] = "".join(traceback.format_exception(*record.exc_info)).strip()
        return json.dumps(entry, default=str)


THIRD_PARTY_LOGGERS = ("huggingface_hub", "httpx", "httpcore", "torch", "gluonts", "urllib3", "filelock")


def hclog_handler(stream: object = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(HclogFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def _writes_to_console(handler: logging.Handler) -> bool:
    """A handler printing to stderr/stdout (torch's _StderrHandler is no StreamHandler subclass)."""
    if isinstance(handler, logging.FileHandler):
        return False
    stream = getattr(handler, "stream", None)
    return stream is not None and stream in (sys.stderr, sys.__stderr__, sys.stdout, sys.__stdout__)


def adopt_third_party_loggers() -> int:
    """Give every stream handler any library installed our formatter and redaction filter.

    Call again after importing a library that configures logging at import time. Returns the
    number of handlers adopted (for tests)."""
    adopted = 0
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name)  # exists, so its children below are visited
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue
        for handler in list(logger.handlers):
            if not _writes_to_console(handler) or isinstance(handler.formatter, HclogFormatter):
                continue
            if logger.propagate:  # the root handler prints it already: a second, plain copy otherwise
                logger.removeHandler(handler)
            else:
                handler.setFormatter(HclogFormatter())
                if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                    handler.addFilter(RedactingFilter())
            adopted += 1
    return adopted


def setup_logging(level: str = "info") -> None:
    handler = hclog_handler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at info: noise in Grafana's log, and a URL may carry a token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn (gluonts, torch) → py.warnings → this handler
    logging.lastResort = handler  # records of a propagate=False logger without handlers
    try:  # both install stderr handlers when imported; the plugin imports them right after this
        import huggingface_hub.utils.logging as hf_logging
        import torch  # noqa: F401

        hf_logging.get_logger()
    except ImportError:
        pass
    adopt_third_party_loggers()
