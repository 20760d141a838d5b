"""The `grafana` part of the data source's settings: Grafana's URL, the service-account token, limits,
and the targets requests without a user may read.

The URL defaults to GF_APP_URL, which Grafana puts in every request's plugin context; `grafanaUrl`
overrides it when that public URL is not reachable from the plugin host (a proxy, a container
network). The part exists when a token or an explicit URL is set: a data source that never
mentions Grafana does not report on it in CheckHealth. `allowedTargets` (data-source uids, default
none) is what an alert rule, or any request Grafana sends without a user's ID token, may read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import bad_request
from ...core.settings import RawSettings, Secret, clean_text, number_setting, redact_url

DEFAULT_MAX_RESPONSE_MB = 64.0
MAX_ALLOWED_TARGETS = 1000
MAX_UID_CHARS = 256  # Grafana's own uids are at most 40; room for whatever an admin provisions


@dataclass(frozen=True)
class GrafanaSettings:
    url: str
    token: Secret = field(default_factory=lambda: Secret(""))
    timeout_s: float = 30.0
    max_response_bytes: int = int(DEFAULT_MAX_RESPONSE_MB * (1 << 20))
    allowed_targets: frozenset[str] = frozenset()  # uids requests without a user may read

    def __repr__(self) -> str:
        return (f"GrafanaSettings(url={redact_url(self.url)!r}, token={self.token!r}, "
                f"timeout_s={self.timeout_s!r}, max_response_bytes={self.max_response_bytes!r}, "
                f"allowed_targets={sorted(self.allowed_targets)!r})")


def allowed_targets_setting(raw: object) -> frozenset[str]:
    """jsonData.allowedTargets: a list of data-source uids (none when absent), or a 400 naming it."""
    if raw in (None, ""):
        return frozenset()
    if not isinstance(raw, list) or len(raw) > MAX_ALLOWED_TARGETS:
        raise bad_request("data source setting allowedTargets: expected a list of data-source uids "
                          f"(at most {MAX_ALLOWED_TARGETS}), e.g. [\"prometheus-main\"]")
    uids = set()
    for item in raw:
        uid = item.strip() if isinstance(item, str) else ""
        if not uid or len(uid) > MAX_UID_CHARS or any(c.isspace() for c in uid):
            raise bad_request(f"data source setting allowedTargets: {str(item)[:40]!r} is not a data-source "
                              "uid (pick the data sources in the settings page's Allowed targets)")
        uids.add(uid)
    return frozenset(uids)


def parse_grafana_settings(raw: RawSettings) -> GrafanaSettings | None:
    """The settings part, or None when neither a token nor a grafanaUrl is set."""
    data = raw.json_data
    explicit = data.get("grafanaUrl") or ""
    if not isinstance(explicit, str):
        raise bad_request(f"data source setting grafanaUrl: {explicit!r} is not a URL such as http://grafana:3000")
    token = clean_text("grafanaToken", raw.secure.get("grafanaToken", ""))  # stripped; no CR/LF
    if not token and not explicit.strip():
        return None
    url = (explicit.strip() or raw.grafana_app_url.strip()).rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise bad_request(f"data source setting grafanaUrl: {redact_url(url)!r} is not an http(s) URL "
                          "such as http://grafana:3000")
    megabytes = number_setting(data, "grafanaMaxResponseMB", DEFAULT_MAX_RESPONSE_MB, 1.0, 1024.0)
    return GrafanaSettings(
        url=url,
        token=Secret(token),
        timeout_s=number_setting(data, "timeoutSeconds", 30.0, 0.1, 600.0),
        max_response_bytes=int(megabytes * (1 << 20)),
        allowed_targets=allowed_targets_setting(data.get("allowedTargets")),
    )
