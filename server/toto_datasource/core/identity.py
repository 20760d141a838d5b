"""Who a request says it is for, exactly as Grafana sent it: nothing here is verified.

Grafana sends a signed ID token (`X-Grafana-Id`) for a signed-in user or service account; the
`grafana` source verifies it before it reads another data source on the caller's behalf.
`from_alert` (the FromAlert header) and `login` can be set by a user's own request and prove
nothing: they choose frame shapes and label log lines, never what may be read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    id_token: str = ""  # the X-Grafana-Id JWT, unverified; "" when Grafana sent none
    org_id: int = 0  # PluginContext.orgId
    namespace: str = ""  # PluginContext.namespace ("default", "org-2", "stacks-N"), when sent
    app_url: str = ""  # GF_APP_URL from the request's grafanaConfig: the token's expected issuer
    login: str = ""  # PluginContext.user.login: for logs only
    from_alert: bool = False  # the FromAlert header: alert-shaped frames, never a permission

    def __repr__(self) -> str:  # the token is a credential: never printed
        token = "<id token>" if self.id_token else "<none>"
        return (f"Caller(org_id={self.org_id}, namespace={self.namespace!r}, login={self.login!r}, "
                f"from_alert={self.from_alert}, id_token={token})")


NO_CALLER = Caller()
