"""One redactor for every message that leaves the process: query errors, CheckHealth, resource
bodies and log lines.

Why one place: before it, each source redacted its own messages, and whatever it missed went
out in full. A bearer token pasted with a trailing newline came back whole in
`Illegal header value b'Bearer PastedTok3nSecret\\n'` (httpx's message, raised before the source
could filter it), and an upstream proxy that echoed the request put the URL's `?token=` and the
base64 `Authorization: Basic` value into query errors and CheckHealth.

Two layers, both replacing with `***`:
- *known values*: every `Secret` in the settings, the Basic form `base64(user:password)`, the
  URL's password and query-string values, each also percent-encoded. Values shorter than
  `MIN_SECRET_CHARS` are skipped: replacing "ab" everywhere would wreck every message and a
  two-character secret protects nothing anyway.
- *shapes*: URL userinfo (`scheme://user:pass@`), query strings (`?a=b...`), and the token after
  `Basic`/`Bearer`, whatever their value: these catch secrets echoed back by an upstream that
  the settings never named (another client's token in a shared proxy's error page).

`SecretRegistry` remembers the secrets of every settings value parsed in this process (bounded),
so a log filter that sees no settings can still remove them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MIN_SECRET_CHARS = 3
MASK = "***"
MAX_REMEMBERED = 4096  # secrets kept by the process registry (oldest forgotten first)

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#\"'<>]+@")
_QUERY_STRING = re.compile(r"\?[^\s#\"'<>?]*=[^\s#\"'<>]*")
# Case-sensitive: header values say "Basic"/"Bearer"; our own messages say "basic or bearer".
_AUTH_SCHEME = re.compile(r"\b(Basic|Bearer|Token) +[A-Za-z0-9+/=._~\-]{8,}")
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|cookie|set-cookie)(\s*[:=]\s*)"
    r"(?:(?:basic|bearer|token|digest|negotiate) +)?[^\s,;<>\"']+"
)


def secret_forms(value: str) -> set[str]:
    """A secret as it may appear in text: as is, stripped, and percent-encoded (echoed URLs)."""
    forms = {value, value.strip(), quote(value, safe=""), quote_plus(value), quote(value),
             repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


def basic_forms(user: str, password: str) -> set[str]:
    """`base64(user:password)` as an Authorization: Basic header carries it (latin-1 and utf-8)."""
    out = set()
    for encoding in ("latin-1", "utf-8"):
        try:
            raw = f"{user}:{password}".encode(encoding)
        except UnicodeEncodeError:
            continue
        out.add(base64.b64encode(raw).decode())
    return {f for f in out if len(f) >= MIN_SECRET_CHARS}


def url_secrets(url: str) -> set[str]:
    """The password and every query-string value of a configured URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
        username = parts.username
    except ValueError:
        return set()
    found: set[str] = set()
    if password:
        found |= secret_forms(password) | secret_forms(unquote(password))
        found |= basic_forms(unquote(username or ""), unquote(password))
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        found |= secret_forms(value)
    if parts.query:
        found |= secret_forms(parts.query)
    return found


def _walk_secrets(value: Any, out: list[str], depth: int = 0) -> None:
    """Every Secret inside a settings value (dataclasses, tuples, lists, dicts), by duck type."""
    if depth > 8 or value is None:
        return
    reveal = getattr(value, "reveal", None)
    if callable(reveal):
        text = reveal()
        if isinstance(text, str) and text:
            out.append(text)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _walk_secrets(getattr(value, f.name), out, depth + 1)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _walk_secrets(item, out, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _walk_secrets(item, out, depth + 1)


def _credential_holders(settings: Any) -> list[Any]:
    """The settings value and each source's part (`DataSourceSettings.parts`: (name, part) pairs)."""
    holders = [settings]
    for entry in getattr(settings, "parts", ()) or ():
        if isinstance(entry, tuple) and len(entry) == 2:
            holders.append(entry[1])
    return holders


def settings_secrets(settings: Any) -> set[str]:
    """All text a settings value must never show: Secrets, Basic forms, URL credentials, in the
    generic settings and in every source's part (found by duck type: this module knows no source)."""
    raw: list[str] = []
    _walk_secrets(settings, raw)
    found: set[str] = set()
    for value in raw:
        found |= secret_forms(value)
    for holder in _credential_holders(settings):
        user = str(getattr(holder, "basic_user", "") or "")
        password = getattr(holder, "basic_password", None)
        if password is not None and callable(getattr(password, "reveal", None)) and password.reveal():
            found |= basic_forms(user, password.reveal())
        url = getattr(holder, "url", "")
        if isinstance(url, str) and url:
            found |= url_secrets(url)
    for token in raw:  # Basic auth built from an empty user or from the bearer token
        found |= basic_forms("", token)
    return found


@dataclasses.dataclass(frozen=True)
class Redactor:
    """Removes known secret values and secret-shaped text from a message."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> Redactor:
        kept = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS}
        return cls(tuple(sorted(kept, key=len, reverse=True)))  # longest first: no partial leftovers

    @classmethod
    def for_settings(cls, settings: Any) -> Redactor:
        return cls.of(settings_secrets(settings))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
        text = _QUERY_STRING.sub(f"?{MASK}", text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        return _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", text)

    def bytes(self, data: bytes) -> bytes:
        """A UTF-8 body redacted; bytes that are not UTF-8 text are returned unchanged."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        out = self(text)
        return data if out == text else out.encode("utf-8")


class SecretRegistry:
    """The secrets of every settings value this process parsed (bounded, thread-safe)."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._limit = limit
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._redactor = Redactor()

    def remember(self, values: Iterable[str]) -> None:
        new = [v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS]
        with self._lock:
            changed = False
            for v in new:
                if v in self._values:
                    self._values.move_to_end(v)
                else:
                    self._values[v] = None
                    changed = True
            while len(self._values) > self._limit:
                self._values.popitem(last=False)
                changed = True
            if changed:
                self._redactor = Redactor.of(self._values)

    def remember_settings(self, settings: Any) -> None:
        self.remember(settings_secrets(settings))

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def __call__(self, text: str) -> str:
        return self._redactor(text)


KNOWN_SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """The process-wide redactor: every secret of every settings value parsed so far, plus shapes."""
    return KNOWN_SECRETS(text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (with its args merged) and traceback text through `redact`.

    Installed on the hclog handler, so every record any logger emits through it is covered.
    The traceback is rendered here into `exc_text` (redacted) and `exc_info` cleared, because
    exception messages carry the values (httpx quotes an illegal header value in full).
    """

    def __init__(self, redactor: Any = None) -> None:
        super().__init__()
        self._redact = redactor or redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        kv = getattr(record, "kv", None)
        if isinstance(kv, dict):
            record.kv = {k: self._redact(v) if isinstance(v, str) else v for k, v in kv.items()}
        return True


# ---- validation of secrets at settings-parse time ----------------------------------------


class SecretValueError(ValueError):
    """A secret value that cannot be sent; the message names the field, never the value."""


def clean_secret(field_name: str, value: object, *, header: bool = True) -> str:
    """A secure field's value as sent: surrounding whitespace stripped (pasted tokens often end in a
    newline), then refused if it still holds CR/LF/NUL or, for header values, is not latin-1
    (HTTP headers are bytes; httpx raises with the value quoted in full)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if any(c in text for c in "\r\n\x00"):
        raise SecretValueError(
            f"data source setting {field_name} contains a line break or NUL character; "
            "paste the value again without line breaks"
        )
    if header:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise SecretValueError(
                f"data source setting {field_name} contains characters that cannot be sent in an HTTP "
                "header (only Latin-1 is allowed); check the value for typos or copy-paste artefacts"
            ) from None
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
            raise SecretValueError(
                f"data source setting {field_name} contains control characters; paste the value again"
            )
    return text


def clean_header_name(field_name: str, value: object) -> str:
    """An HTTP header name: a token (RFC 9110), no spaces, colons or non-ASCII."""
    text = ("" if value is None else str(value)).strip()
    if text and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+", text):
        raise SecretValueError(
            f"data source setting {field_name}: {text[:40]!r} is not a valid HTTP header name "
            "(letters, digits and - only)"
        )
    return text
