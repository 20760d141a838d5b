"""Which targets a request may read through the `grafana` source, decided per query before any
of the target's data is fetched.

Every target query runs with the data source's service-account token, and Grafana checks only
that token (and, for an alert rule, only the rule's own data source: it never sees the target
uid inside our query). So the plugin asks on the caller's behalf:

- a verified user or service account (identity.py): Grafana's permission search
  `GET /api/access-control/users/permissions/search?namespacedId=<sub>&action=datasources:query`
  with the service-account token (which needs `users.permissions:read`); a scope
  `datasources:*`, `datasources:uid:*` or `datasources:uid:<target>` allows. Answers, denials
  included, are kept 60 s per (issuer, org, subject, target): uids are unique per org only.
  On an open-source Grafana that has no search (404, and GF_EDITION says so) there are no
  per-data-source permissions: org role Viewer, Editor or Admin may read, None may not. A 403
  (the account lacks the permission), any other failure, or a 404 where the edition is not known
  to be open source refuses the query.
- no user (no token: an alert rule, a public dashboard, an old Grafana; or a verified anonymous or
  render token): only the admin's `allowedTargets`. A CallResource always comes from a person's
  browser, so without a token it is refused outright.

A denial says the same words whether the uid exists or not.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from ...core.errors import BackendError, downstream
from ...core.request import RequestContext
from ..base import SourceHealth
from .client import TOKEN_HELP, GrafanaClient
from .identity import IdentityVerifier, SigningKeys, VerifiedIdentity

QUERY_ACTION = "datasources:query"
SEARCH_PATH = "/api/access-control/users/permissions/search"
KEYS_PATH = "/api/signing-keys/keys"
PROBE_ACTION = "toto-forecast-datasource.probe:none"  # an action nobody holds: the cheapest search
ANSWER_TTL_S = 60.0
MAX_ANSWERS = 10_000
OSS_READER_ROLES = ("Viewer", "Editor", "Admin")
OPEN_SOURCE_EDITIONS = ("open source", "opensource", "open-source", "oss")
SEARCH_PERMISSION_HELP = (
    "give the service account users.permissions:read (open-source Grafana: the Admin role; Enterprise "
    "and Cloud: the fixed role fixed:org.users:reader or a custom role with that action)"
)
ALLOW_HELP = (
    "an admin can list the data sources that alert rules (and other requests without a signed-in user) "
    "may read under Allowed targets in this data source's settings (allowedTargets)"
)


def is_open_source(edition: str) -> bool:
    return edition.strip().lower() in OPEN_SOURCE_EDITIONS


def allowing_scopes(uid: str) -> frozenset[str]:
    return frozenset(("datasources:*", "datasources:uid:*", f"datasources:uid:{uid}"))


def denied(uid: str) -> BackendError:
    return BackendError(f"you may not query data source {uid}: ask a Grafana admin for the Query "
                        "permission on it", 403)


class AnswerCache:
    """Permission answers (allowed or not) for at most `ttl_s` each, the oldest dropped past
    `max_entries`."""

    def __init__(self, ttl_s: float = ANSWER_TTL_S, max_entries: int = MAX_ANSWERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_entries, self._clock = ttl_s, max_entries, clock
        self._answers: OrderedDict[Hashable, tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bool | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._answers[key]
                return None
            return found[1]

    def put(self, key: Hashable, allowed: bool) -> None:
        with self._lock:
            self._answers[key] = (self._clock() + self.ttl_s, allowed)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)


class TargetAccess:
    """The decision for one data source's settings: its Grafana, its allow-list, Grafana's edition."""

    def __init__(self, client: GrafanaClient, allowed_targets: frozenset[str], edition: str, *,
                 answers: AnswerCache | None = None, keys: SigningKeys | None = None) -> None:
        self._client = client
        self.allowed_targets = allowed_targets
        self.edition = edition.strip()
        self._answers = answers or AnswerCache()
        self._verifier = IdentityVerifier(keys or SigningKeys(self._signing_keys), client.url)

    def check(self, uid: str, ctx: RequestContext) -> None:
        """Return when the request may read data source `uid`; else raise its 401/403 (or the
        502/504 of a check that could not be made)."""
        identity = self._verifier.verify(ctx.caller, ctx)
        if identity is None:
            self._check_without_user(uid, ctx)
            return
        key = (identity.issuer, identity.org_id, identity.subject, uid)
        allowed = self._answers.get(key)
        if allowed is None:
            allowed = self._ask(identity, uid, ctx)
            self._answers.put(key, allowed)
        if not allowed:
            raise denied(uid)

    def _check_without_user(self, uid: str, ctx: RequestContext) -> None:
        if ctx.resource_call:
            raise BackendError("Grafana sent no signed-in user's ID token with this request, so the plugin "
                               "cannot check your permission on the data source: use Grafana 11.3 or newer "
                               "(10.3-11.2: turn on the idForwarding feature toggle)", 403)
        if uid in self.allowed_targets:
            return
        why = ("this request has no signed-in user (an alert rule, a public dashboard, or a Grafana that "
               "does not forward ID tokens)")
        if not self.allowed_targets:
            raise BackendError(f"{why}, and no data source is allowed for such requests: {ALLOW_HELP}", 403)
        raise BackendError(f"{why}, and data source {uid} is not among the data sources allowed for such "
                           f"requests: {ALLOW_HELP}", 403)

    def _ask(self, identity: VerifiedIdentity, uid: str, ctx: RequestContext) -> bool:
        """Grafana's answer for one identity and target; raises when it cannot be had."""
        status, doc = self._client.get_json(
            SEARCH_PATH, {"namespacedId": identity.subject, "action": QUERY_ACTION}, ctx, auth=True)
        cannot = f"cannot check your permission on data source {uid}"
        if status == 200 and isinstance(doc, Mapping):
            return not allowing_scopes(uid).isdisjoint(scopes_of(doc))
        if status == 404 and is_open_source(self.edition):
            return identity.role in OSS_READER_ROLES
        if status == 404:
            raise BackendError(f"{cannot}: {self._no_search()}", 403)
        if status == 403:
            raise BackendError(f"{cannot}: Grafana refused the data source's service account the permission "
                               f"search (403); {SEARCH_PERMISSION_HELP}", 403)
        if status == 401:
            raise downstream(f"{cannot}: Grafana rejected the service-account token (401): {TOKEN_HELP}", 401)
        raise downstream(f"{cannot}: Grafana at {self._client.url} answered the permission search with "
                         f"HTTP {status}", 502)

    def _no_search(self) -> str:
        what = "Grafana has no permission search (HTTP 404 from /api/access-control/users/permissions/search)"
        if not self.edition:
            return (f"{what}, and the plugin does not know Grafana's edition (GF_EDITION is not set: a "
                    "plugin server started on its own; set TOTO_EDITION to Grafana's edition)")
        return (f"{what}, and Grafana's edition is {self.edition[:40]!r}, which has per-data-source "
                "permissions: upgrade Grafana or turn on its accessControlOnCall feature toggle")

    def _signing_keys(self, ctx: RequestContext) -> Mapping[str, Any]:
        status, doc = self._client.get_json(KEYS_PATH, None, ctx, auth=False)
        if status != 200 or not isinstance(doc, Mapping):
            raise downstream(f"cannot verify the request's ID token: Grafana at {self._client.url} answered "
                             f"{KEYS_PATH} with HTTP {status}", 502)
        return doc

    # ---- health ------------------------------------------------------------------------------

    def probe(self, ctx: RequestContext) -> SourceHealth:
        """Whether users' permissions can be checked with the service account's token (a search for
        an action nobody holds), and what requests without a user may read."""
        try:
            status, _ = self._client.get_json(SEARCH_PATH, {"action": PROBE_ACTION}, ctx, auth=True,
                                              deadline_of="the health check")
        except BackendError as exc:
            return SourceHealth(False, f"permission search: {exc.message}")
        without_user = self._allow_list_summary()
        if status == 200:
            return SourceHealth(True, f"users' permissions are checked per target; {without_user}")
        if status == 404 and is_open_source(self.edition):
            return SourceHealth(True, "this open-source Grafana has no permission search: signed-in users "
                                f"with role Viewer, Editor or Admin may read any target; {without_user}")
        if status == 404:
            return SourceHealth(False, f"queries for signed-in users will be refused: {self._no_search()}")
        if status == 403:
            return SourceHealth(False, "queries for signed-in users will be refused: the service account may "
                                f"not search users' permissions (403); {SEARCH_PERMISSION_HELP}")
        return SourceHealth(False, f"queries for signed-in users will be refused: Grafana answered the "
                            f"permission search with HTTP {status}")

    def _allow_list_summary(self) -> str:
        if not self.allowed_targets:
            return "alert rules may read no target (Allowed targets is empty)"
        names = ", ".join(sorted(self.allowed_targets)[:5])
        more = f" and {len(self.allowed_targets) - 5} more" if len(self.allowed_targets) > 5 else ""
        return f"alert rules may read {names}{more}"


def scopes_of(doc: Mapping[str, Any]) -> set[str]:
    """Every scope of `datasources:query` in a search answer ({"<user id>": {action: [scopes]}})."""
    scopes: set[str] = set()
    for permissions in doc.values():
        if isinstance(permissions, Mapping):
            found = permissions.get(QUERY_ACTION)
            if isinstance(found, list):
                scopes.update(s for s in found if isinstance(s, str))
    return scopes
