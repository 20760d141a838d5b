"""hclog-compatible JSON logs on stderr, one object per line, as go-plugin's host parses them.

`@timestamp` must have exactly 6 fractional digits or Grafana treats the whole line as plain
text (go-plugin's hclog reader). Extra key/values go in `extra={"kv": {...}}`.

Every line passes `runtime.redact.RedactingFilter` (no configured secret, URL credential or
query string reaches Grafana's log), and third-party loggers that bring their own plain-text
stream handler (huggingface_hub adds one at import; torch adds its own and sets propagate=False)
get this formatter and filter too, as does `logging.lastResort`: Hugging Face's retry
messages reached stderr as plain text when no checkpoint was local and there was no network.
Those libraries are imported by the engine's loader thread, after the handshake and after this
setup, so loggers created from then on are `AdoptingLogger`s: a console handler added to one is
adopted as it is added (no import here, no window in which plain text gets out).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

from ..core.redact import RedactingFilter

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


class _WhileNotPropagating(logging.Filter):
    """A library's own console handler on a logger that propagates to our root handler would print
    every line twice; it prints only while its logger does not propagate (torch turns that off)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._logger.propagate


class AdoptingLogger(logging.Logger):
    """A logger whose console handlers, whoever adds them, write hclog JSON through redaction."""

    def addHandler(self, hdlr: logging.Handler) -> None:
        if _writes_to_console(hdlr) and not isinstance(hdlr.formatter, HclogFormatter):
            hdlr.setFormatter(HclogFormatter())
            hdlr.addFilter(RedactingFilter())
            hdlr.addFilter(_WhileNotPropagating(self))
        super().addHandler(hdlr)


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
    adopt_third_party_loggers()  # libraries imported before this call
    logging.setLoggerClass(AdoptingLogger)  # and every logger created after it
