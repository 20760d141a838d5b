"""The `grafana` part of the data source's settings: Grafana's URL, the service-account token, limits.

The URL defaults to GF_APP_URL, which Grafana puts in every request's plugin context; `grafanaUrl`
overrides it when that public URL is not reachable from the plugin host (a proxy, a container
network). The part exists when a token or an explicit URL is set: a data source that never
mentions Grafana does not report on it in CheckHealth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import bad_request
from ...core.settings import RawSettings, Secret, clean_text, number_setting, redact_url

DEFAULT_MAX_RESPONSE_MB = 64.0


@dataclass(frozen=True)
class GrafanaSettings:
    url: str
    token: Secret = field(default_factory=lambda: Secret(""))
    timeout_s: float = 30.0
    max_response_bytes: int = int(DEFAULT_MAX_RESPONSE_MB * (1 << 20))

    def __repr__(self) -> str:
        return (f"GrafanaSettings(url={redact_url(self.url)!r}, token={self.token!r}, "
                f"timeout_s={self.timeout_s!r}, max_response_bytes={self.max_response_bytes!r})")


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
    )
