"""History from a Prometheus-compatible HTTP API (`/api/v1/query_range` and friends).

The planner picks the grid; this module only fetches it: one or more `query_range` calls whose
start/end/step reproduce the grid exactly (Prometheus evaluates a range query at
start, start+step, ..., so its points fall on our grid), merged per label set into float64 arrays
with NaN where nothing was observed. Every upstream fault becomes a `QueryError` with source
"downstream" whose message says what happened without ever quoting a secret.
"""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import numpy as np

from ..errors import QueryError, bad_request, downstream
from ..settings import PrometheusSettings, redact_url
from .base import History, HistoryRequest, Series, TimeGrid

log = logging.getLogger(__name__)

# Prometheus refuses a range query with (end - start) / step > 11000; keep each request at or below
# 11000 points so the check passes on every version and on compatible servers.
MAX_POINTS_PER_REQUEST = 11_000
MIN_RELIABLE_POINTS = 32
LATE_START_FRACTION = 0.10  # a leading gap of >= 10% of the window is worth telling the user about
MAX_BODY_BYTES = 512 * 1024 * 1024  # a runaway answer must not take the plugin process down with it
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
PREVIEW_POINTS = 240  # a preview only counts series; a coarse step keeps it cheap
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LEGEND_TOKEN = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


@dataclass(frozen=True)
class UpstreamHealth:
    """What CheckHealth reports about the upstream Prometheus."""

    ok: bool
    message: str
    version: str = ""


@dataclass
class _Placed:
    """One series on the grid plus the hygiene counts its placement found."""

    labels: dict[str, str]
    values: np.ndarray
    misaligned: int = 0
    duplicates: int = 0
    non_finite: int = 0


def series_name(labels: Mapping[str, str], legend_format: str, expr: str) -> str:
    """Display name: the legend format with {{label}} filled in, else `name{k="v", ...}`, else the expr."""
    if legend_format.strip():
        return _LEGEND_TOKEN.sub(lambda m: labels.get(m.group(1), ""), legend_format)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    if not name and not rest:
        return expr
    return f"{name}{{{rest}}}" if rest else name


def place_on_grid(
    grid: TimeGrid, timestamps_s: np.ndarray, values: np.ndarray, out: np.ndarray
) -> tuple[int, int]:
    """Write samples into `out` (len grid.count) at their nearest grid step.

    Prometheus range queries already answer on the grid; compatible servers (or rounding in
    float seconds) may not, so points are snapped to the nearest step and a later duplicate wins.
    Returns (misaligned, duplicates); points outside the grid are ignored.
    """
    ts_ms = np.asarray(timestamps_s, dtype=np.float64) * 1000.0
    pos = (ts_ms - grid.start_ms) / grid.step_ms
    idx = np.rint(pos).astype(np.int64)
    inside = (idx >= 0) & (idx < grid.count)
    idx, vals, pos = idx[inside], np.asarray(values, dtype=np.float64)[inside], pos[inside]
    # More than a millisecond off the grid counts as misaligned (float seconds round to ~1 µs).
    misaligned = int(np.count_nonzero(np.abs(pos - idx) * grid.step_ms > 1.0))
    duplicates = int(idx.size - np.unique(idx).size)
    out[idx] = vals  # numpy assigns in order, so the last duplicate wins
    return misaligned, duplicates


def looks_like_counter(labels: Mapping[str, str], values: np.ndarray) -> bool:
    """A raw counter: a counter-style name, or values that only rise except for resets towards zero.

    A gauge that only rises (disk usage) has no resets and is not flagged; a counter's forecast
    is a staircase to nowhere, so the user should forecast rate(...) instead.
    """
    if labels.get("__name__", "").endswith(COUNTER_SUFFIXES):
        return True
    seen = values[np.isfinite(values)]
    if seen.size < MIN_RELIABLE_POINTS:
        return False
    diffs = np.diff(seen)
    drops = diffs < 0
    if not drops.any() or not (diffs > 0).any():
        return False
    if np.count_nonzero(drops) > 0.01 * diffs.size:
        return False
    before, after = seen[:-1][drops], seen[1:][drops]
    return bool(np.all((after <= 0.5 * before) & (before > 0)))


def _fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt_seconds(ms: int) -> str:
    """Milliseconds as the decimal seconds Prometheus accepts for start/end/step."""
    return f"{ms // 1000}.{ms % 1000:03d}" if ms >= 0 else f"{ms / 1000:.3f}"


def _fmt_step(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def _chunks(grid: TimeGrid) -> list[TimeGrid]:
    """Split the grid into consecutive sub-grids of at most MAX_POINTS_PER_REQUEST points."""
    out = []
    first = 0
    while first < grid.count:
        n = min(MAX_POINTS_PER_REQUEST, grid.count - first)
        end = grid.start_ms + (first + n - 1) * grid.step_ms
        out.append(TimeGrid(end_ms=end, step_ms=grid.step_ms, count=n))
        first += n
    return out


class PrometheusSource:
    """Fetches history, metadata and health from one Prometheus data source (one httpx client)."""

    def __init__(
        self, settings: PrometheusSettings, max_series: int, client: httpx.Client | None = None
    ) -> None:
        if not settings.url:
            raise bad_request("the data source has no Prometheus URL configured")
        self.settings = settings
        self.max_series = max_series
        # Credentials in the URL (http://user:pass@host) become basic auth: httpx logs request
        # URLs, so the URL we send never carries them, and the one messages show has ***@ instead.
        self._base = redact_url(settings.url, userinfo="").rstrip("/")
        # A query string in the configured URL (e.g. a tenant or org parameter some Prometheus-
        # compatible APIs want) goes with every request; messages leave it out (it may hold a token).
        self._base_params = parse_qsl(urlsplit(settings.url).query, keep_blank_values=True)
        self.url = redact_url(settings.url).rstrip("/")
        userinfo = urlsplit(settings.url)
        # Values that must never reach a message or a log line (upstream error bodies are redacted too).
        self._secrets = [s for s in (settings.basic_password.reveal(), settings.bearer_token.reveal()) if s]
        self._secrets += [v.reveal() for _, v in settings.headers if v]
        self._secrets += [p for p in (userinfo.password, unquote(userinfo.password or "")) if p]
        self._clock = time.monotonic  # injectable so tests can drive the deadline without waiting
        self._headers = {name: value.reveal() for name, value in settings.headers}
        self._auth: httpx.Auth | None = None
        if settings.auth == "basic":
            self._auth = httpx.BasicAuth(settings.basic_user, settings.basic_password.reveal())
        elif settings.auth == "bearer":
            self._headers["Authorization"] = f"Bearer {settings.bearer_token.reveal()}"
        elif userinfo.username or userinfo.password:
            self._auth = httpx.BasicAuth(unquote(userinfo.username or ""), unquote(userinfo.password or ""))
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s),
            verify=self._verify(settings),
            follow_redirects=True,
            # Prometheus gzips a 4.7 MB answer (100 series x 2048 points) in ~0.45 s on 2 cores but
            # sends it uncompressed in ~0.08 s: on the LAN/cluster links a data source uses,
            # compression costs more than it saves.
            headers={"User-Agent": "toto-forecast-datasource", "Accept-Encoding": "identity"},
        )

    @staticmethod
    def _verify(settings: PrometheusSettings) -> ssl.SSLContext | bool:
        if settings.tls_skip_verify:
            return False
        if not settings.tls_ca_cert.strip():
            return True
        try:
            return ssl.create_default_context(cadata=settings.tls_ca_cert)
        except (ssl.SSLError, ValueError) as exc:
            raise bad_request(
                f"data source setting tlsCACert is not a valid PEM certificate: {exc}"
            ) from None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ---- history ---------------------------------------------------------------------------

    def fetch(self, request: HistoryRequest) -> History:
        """Fill every series of the query's expression onto request.grid (NaN where unobserved)."""
        spec = request.query.source  # type: ignore[attr-defined]
        expr = str(getattr(spec, "expr", "") or "").strip()
        legend = str(getattr(spec, "legend_format", "") or "")
        if not expr:
            raise bad_request("the Prometheus query has no expression (expr is empty)")
        grid = request.grid
        if grid.count <= 0 or grid.step_ms <= 0:
            raise bad_request(f"invalid history grid: {grid.count} points every {grid.step_ms} ms")
        deadline = self._clock() + self.settings.timeout_s
        chunks = _chunks(grid)

        placed: dict[tuple[tuple[str, str], ...], _Placed] = {}
        warnings: list[str] = []
        for chunk in chunks:
            data = self._api(
                "POST",
                "/api/v1/query_range",
                {
                    "query": expr,
                    "start": _fmt_seconds(chunk.start_ms),
                    "end": _fmt_seconds(chunk.end_ms),
                    "step": _fmt_seconds(chunk.step_ms),
                    "timeout": f"{self.settings.timeout_s:g}",
                },
                deadline,
                warnings,
            )
            result = self._matrix(data)
            keys = [tuple(sorted((item.get("metric") or {}).items())) for item in result]
            total = len(placed) + len({k for k in keys if k not in placed})
            if total > self.max_series:
                raise bad_request(
                    f"query returned {total} series; the data source allows at most {self.max_series} "
                    "(maxSeries setting); narrow the selector or aggregate"
                )
            for key, item in zip(keys, result, strict=True):
                entry = placed.get(key)
                if entry is None:
                    entry = placed[key] = _Placed(dict(key), np.full(grid.count, np.nan))
                self._place(grid, item, entry)
        return self._history(grid, expr, legend, list(placed.values()), warnings, len(chunks))

    def _place(self, grid: TimeGrid, item: Mapping[str, Any], entry: _Placed) -> None:
        points = item.get("values") or []
        if not points:
            return
        try:
            ts = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
            vals = np.fromiter((float(p[1]) for p in points), dtype=np.float64, count=len(points))
        except (TypeError, ValueError, IndexError, KeyError):
            raise self._bad_response("a series has malformed [timestamp, value] pairs") from None
        inf = np.isinf(vals)
        if inf.any():
            entry.non_finite += int(inf.sum())
            vals[inf] = np.nan
        misaligned, duplicates = place_on_grid(grid, ts, vals, entry.values)
        entry.misaligned += misaligned
        entry.duplicates += duplicates

    def _history(
        self,
        grid: TimeGrid,
        expr: str,
        legend: str,
        placed: list[_Placed],
        warnings: list[str],
        requests: int,
    ) -> History:
        notices = [f"Prometheus: {w}" for w in warnings]
        series: list[Series] = []
        empty = 0
        few: list[str] = []
        late: list[str] = []
        counters: list[str] = []
        snapped = dups = non_finite = 0
        late_after = max(1, math.ceil(grid.count * LATE_START_FRACTION))
        for entry in placed:
            observed = np.isfinite(entry.values)
            n = int(observed.sum())
            if n == 0:
                empty += 1
                continue
            name = series_name(entry.labels, legend, expr)
            series.append(Series(name=name, labels=entry.labels, values=entry.values))
            snapped += entry.misaligned
            dups += entry.duplicates
            non_finite += entry.non_finite
            if n < MIN_RELIABLE_POINTS:
                few.append(name)
            first = int(np.argmax(observed))
            if first >= late_after:
                late.append(name)
            if looks_like_counter(entry.labels, entry.values):
                counters.append(name)
        if not series:
            raise bad_request(
                f"expr returned no data between {_fmt_time(grid.start_ms)} and {_fmt_time(grid.end_ms)} "
                f"(step {_fmt_step(grid.step_ms)}); check the expression and the time range"
            )
        if empty:
            notices.append(f"{empty} series had no points in the history window and were dropped")
        if few:
            notices.append(
                f"{len(few)} series have fewer than {MIN_RELIABLE_POINTS} points; "
                f"their forecasts are unreliable ({_some(few)})"
            )
        if late:
            notices.append(
                f"{len(late)} series start late in the history window "
                f"(the missing history is masked): {_some(late)}"
            )
        if counters:
            notices.append(
                f"{len(counters)} series look like raw counters ({_some(counters)}); a counter only grows, "
                "so forecast its rate instead, e.g. rate(<counter>[5m])"
            )
        if snapped or dups:
            notices.append(
                f"{snapped + dups} points were off the {_fmt_step(grid.step_ms)} grid or duplicated "
                "and were snapped to the nearest step"
            )
        if non_finite:
            notices.append(f"{non_finite} infinite values were treated as missing")
        executed = (
            f"query_range {expr} start={_fmt_time(grid.start_ms)} end={_fmt_time(grid.end_ms)} "
            f"step={_fmt_step(grid.step_ms)}"
        )
        if requests > 1:
            executed += f" ({requests} requests of at most {MAX_POINTS_PER_REQUEST} points)"
        return History(grid=grid, series=series, notices=notices, executed_query=executed)

    # ---- editor resources ------------------------------------------------------------------

    def metric_names(self, match: str = "", limit: int = 200) -> list[str]:
        """Metric names for the editor. A `match` with braces is a series selector sent upstream;
        plain text filters names by case-insensitive substring."""
        selector = match.strip() if "{" in match else ""
        names = self._label_values("__name__", selector)
        needle = "" if selector else match.strip().lower()
        picked = [n for n in names if needle in n.lower()]
        return sorted(picked)[: max(0, limit)]

    def label_values(self, label: str, match: str = "") -> list[str]:
        """Values of one label, optionally only on series matching the selector `match`."""
        if not _LABEL_NAME.match(label):
            raise bad_request(f"invalid label name {label!r}")
        return sorted(self._label_values(label, match.strip()))

    def _label_values(self, label: str, selector: str) -> list[str]:
        params = {"match[]": selector} if selector else None
        data = self._api(
            "GET", f"/api/v1/label/{label}/values", params, self._clock() + self.settings.timeout_s
        )
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise self._bad_response("label values are not a list of strings")
        return data

    def series_count(self, expr: str, grid: TimeGrid) -> int:
        """How many series `expr` returns over the grid's span, from a coarse range query (the
        preview only counts; the values are not needed at full resolution)."""
        expr = expr.strip()
        if not expr:
            raise bad_request("the Prometheus query has no expression (expr is empty)")
        span = grid.end_ms - grid.start_ms
        step = max(grid.step_ms, -(-span // PREVIEW_POINTS) if span else grid.step_ms)
        data = self._api(
            "POST",
            "/api/v1/query_range",
            {
                "query": expr,
                "start": _fmt_seconds(grid.start_ms),
                "end": _fmt_seconds(grid.end_ms),
                "step": _fmt_seconds(step),
                "timeout": f"{self.settings.timeout_s:g}",
            },
            self._clock() + self.settings.timeout_s,
            [],
        )
        return len(self._matrix(data))

    # ---- health ----------------------------------------------------------------------------

    def check(self) -> UpstreamHealth:
        """Reachable, credentials accepted, version: buildinfo needs auth like any API call, so a
        successful answer proves all three. Falls back to a trivial query for compatible servers
        without the buildinfo endpoint."""
        deadline = self._clock() + self.settings.timeout_s
        try:
            info = self._api("GET", "/api/v1/status/buildinfo", None, deadline)
            version = str(info.get("version", "")) if isinstance(info, dict) else ""
        except QueryError as exc:
            if "HTTP 404" not in exc.message:
                return UpstreamHealth(False, exc.message)
            try:
                self._api("GET", "/api/v1/query", {"query": "1"}, deadline)
            except QueryError as exc2:
                return UpstreamHealth(False, exc2.message)
            version = ""
        shown = version or "unknown"
        return UpstreamHealth(True, f"Prometheus at {self.url} reachable, version {shown}", version)

    # ---- HTTP ------------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        deadline: float,
        warnings: list[str] | None = None,
    ) -> Any:
        """One API call under a deadline; returns the `data` member or raises a downstream QueryError."""
        body, status = self._send(method, path, params, deadline)
        if status in (401, 403):
            raise downstream(
                f"Prometheus at {self.url} rejected the credentials (HTTP {status}); "
                "check the data source's authentication settings",
                502,
            )
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
            if status == 404:
                raise downstream(
                    f"Prometheus at {self.url} answered HTTP 404 for {path}; "
                    "is the URL the root of a Prometheus API?",
                    502,
                )
            if status >= 400:
                raise downstream(
                    f"Prometheus at {self.url} answered HTTP {status}: {self._snippet(body)}",
                    504 if status == 504 else 502,
                )
            raise self._bad_response("the answer is not Prometheus API JSON")
        if doc["status"] == "error" or status >= 400:
            kind = str(doc.get("errorType", ""))
            text = self._redact(str(doc.get("error", "") or f"HTTP {status}"))
            if kind == "bad_data" or status == 400:
                raise downstream(f"Prometheus rejected the query: {text}", 400)
            if kind == "timeout" or (status in (503, 504) and "timeout" in text.lower()):
                raise downstream(f"Prometheus timed out evaluating the query: {text}", 504)
            if kind == "execution" or status == 422:
                raise downstream(f"Prometheus could not execute the query: {text}", 422)
            raise downstream(
                f"Prometheus at {self.url} answered HTTP {status} ({kind or 'error'}): {text}", 502
            )
        if warnings is not None:
            warnings.extend(self._redact(str(w)) for w in doc.get("warnings") or [])
        return doc.get("data")

    def _send(
        self, method: str, path: str, params: Mapping[str, str] | None, deadline: float
    ) -> tuple[bytes, int]:
        """Send and read the whole body before `deadline`: httpx timeouts are per operation, so a
        server that trickles bytes is cut off here rather than after timeout × chunks."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise self._timeout()
        form = method == "POST"
        log.debug("prometheus %s %s %s", method, path, {k: v for k, v in (params or {}).items()})
        try:
            req = self._client.build_request(
                method,
                self._base + path,
                params=[*self._base_params, *(() if form else (params or {}).items())] or None,
                data=params if form else None,
                headers=self._headers,
                timeout=httpx.Timeout(remaining),
            )
            resp = self._client.send(req, stream=True, auth=self._auth or httpx.USE_CLIENT_DEFAULT)
            try:
                parts: list[bytes] = []
                size = 0
                for part in resp.iter_bytes():
                    size += len(part)
                    if size > MAX_BODY_BYTES:
                        raise downstream(
                            f"Prometheus at {self.url} sent more than {MAX_BODY_BYTES >> 20} MiB; "
                            "narrow the selector or use a coarser step",
                            502,
                        )
                    parts.append(part)
                    if self._clock() > deadline:
                        raise self._timeout()
                return b"".join(parts), resp.status_code
            finally:
                resp.close()
        except QueryError:
            raise
        except httpx.TimeoutException:
            raise self._timeout() from None
        except httpx.ConnectError as exc:
            raise downstream(f"cannot reach Prometheus at {self.url}: {self._reason(exc)}", 502) from None
        except httpx.HTTPError as exc:
            raise downstream(
                f"request to Prometheus at {self.url} failed: {self._reason(exc)}", 502
            ) from None

    def _timeout(self) -> QueryError:
        return downstream(
            f"Prometheus at {self.url} did not answer within {self.settings.timeout_s:g}s "
            "(timeout setting of the data source)",
            504,
        )

    def _bad_response(self, why: str) -> QueryError:
        return downstream(f"Prometheus at {self.url} sent an invalid response: {why}", 502)

    def _reason(self, exc: Exception) -> str:
        text = str(exc)
        low = text.lower()
        if "refused" in low:
            return "connection refused"
        if "certificate" in low or "ssl" in low or "tls" in low:
            return "TLS handshake failed (check the CA certificate or skip-verify setting): " + self._redact(
                text.split("] ")[-1]
            )
        if "name or service not known" in low or "nodename nor servname" in low or "name resolution" in low:
            return "host name not found"
        return self._redact(re.sub(r"^\[Errno -?\d+\]\s*", "", text)) or type(exc).__name__

    def _snippet(self, body: bytes) -> str:
        text = body[:300].decode("utf-8", "replace").strip().replace("\n", " ")
        return self._redact(text) or "(empty body)"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _matrix(self, data: Any) -> list[Mapping[str, Any]]:
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise self._bad_response(f"expected a range-query matrix, got {kind!r}")
        result = data.get("result")
        if not isinstance(result, list) or not all(
            isinstance(r, dict) and isinstance(r.get("metric", {}), dict) for r in result
        ):
            raise self._bad_response("the matrix result is not a list of series")
        return result
