"""Who the `grafana` source reads for: Grafana's ID token (X-Grafana-Id), verified.

Grafana signs an ID token for the signed-in user (and for a service account calling its API) and
forwards it with QueryData, CallResource and CheckHealth. The token is ES256 with its key's `kid`
in the header; the public keys are published without login at `<Grafana>/api/signing-keys/keys`.
The claims say who (`sub` "user:<uid>", `type`, `role`), for which organisation (`aud`
"org:<id>", `namespace`), by whom (`iss`: Grafana's app URL) and until when (`exp`, ten minutes).

A header alone proves nothing: on a Grafana without ID forwarding a user's own request can carry
any X-Grafana-Id. So every token is verified before it names anyone (PyJWT on `cryptography`):
ES256 only (`none`, HS* and RS* are refused before a key is looked up, so a public key can never
be used as an HMAC secret), a `kid` of Grafana's key set, the signature, `exp` (30 s of clock
skew), `iss` = the request's GF_APP_URL, `aud` containing the request's org, `namespace` = the
request's when Grafana sends one. A token that fails any of these is a 401: never "no user".
Verified tokens of other types (anonymous, render) are "no user" (`None`).

The key set is fetched through the source's budgeted HTTP client on first use, kept for an hour,
and fetched again at once when a token names a `kid` it does not hold (Grafana rotated its key):
concurrent requests wait for one fetch, and an unknown `kid` triggers at most one fetch per 5 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

from ...core.errors import BackendError
from ...core.identity import Caller
from ...core.request import RequestContext

ALGORITHM = "ES256"  # what Grafana signs ID tokens with (go-jose, P-256)
CLOCK_SKEW_S = 30
KEY_SET_TTL_S = 3600.0
UNKNOWN_KID_REFETCH_S = 5.0  # at most one fetch per this for tokens naming a kid not held
USER_TYPES = ("user", "service-account")  # identities Grafana's permission search answers for
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

KeySetFetch = Callable[[RequestContext], Mapping[str, Any]]


@dataclass(frozen=True)
class VerifiedIdentity:
    """A user or service account Grafana vouched for, in the request's organisation."""

    issuer: str  # Grafana's app URL, normalised
    org_id: int
    subject: str  # the typed id as Grafana writes it, e.g. "user:<uid>"
    kind: str  # "user" or "service-account"
    role: str  # the org role claim: "Viewer", "Editor", "Admin", "None", or "" when not sent


def normalised_url(url: str) -> str:
    """An app URL as issuers compare: scheme and host lower-case, no trailing slash (GF_APP_URL ends
    with one; a token's `iss` is the same root_url)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       parts.query, parts.fragment))


def refused(reason: str) -> BackendError:
    return BackendError(f"Grafana's ID token for this request (X-Grafana-Id) was refused: {reason}", 401)


def public_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ES256 (EC P-256) public keys of a JWK set by kid; keys of any other kind are left out."""
    out: dict[str, Any] = {}
    entries = doc.get("keys") if isinstance(doc, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        public = {k: entry.get(k) for k in ("kty", "crv", "x", "y")}  # never a private "d"
        try:
            out[kid] = jwt.PyJWK(public, algorithm=ALGORITHM).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return out


class SigningKeys:
    """One Grafana's published signing keys: fetched on first use, kept `ttl_s`, fetched again for
    a `kid` not held (at most once per `refetch_s` for such kids), one fetch at a time."""

    def __init__(self, fetch: KeySetFetch, *, ttl_s: float = KEY_SET_TTL_S,
                 refetch_s: float = UNKNOWN_KID_REFETCH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._refetch_s = refetch_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._expires = -1.0
        self._refetched_at = -float("inf")
        self._inflight: Future[None] | None = None

    def key(self, kid: str, ctx: RequestContext) -> Any | None:
        """The public key for `kid`, or None when Grafana does not publish it. Raises BackendError
        when the key set cannot be fetched (a 502/504 naming Grafana)."""
        fetched = False
        while True:
            with self._lock:
                now = self._clock()
                fresh = now < self._expires
                if fresh and kid in self._keys:
                    return self._keys[kid]
                if fetched or (fresh and now - self._refetched_at < self._refetch_s):
                    return None
                inflight, mine = self._inflight, self._inflight is None
                if inflight is None:
                    inflight = self._inflight = Future()
                    if fresh:  # a kid the current set lacks: a rotation, or a forged header
                        self._refetched_at = now
            if mine:
                self._load(inflight, ctx)
            else:
                self._wait(inflight, ctx)
            fetched = True

    def _wait(self, inflight: Future[None], ctx: RequestContext) -> None:
        """Wait for another request's fetch of the key set (its error is this request's too)."""
        try:
            with ctx.released():
                inflight.result(timeout=ctx.left())
        except FutureTimeout:
            raise BackendError("Grafana's signing keys (to verify the request's ID token) did not arrive "
                               "before the request's deadline", 504, "downstream") from None

    def _load(self, inflight: Future[None], ctx: RequestContext) -> None:
        try:
            keys = public_keys(self._fetch(ctx))
        except BaseException as exc:
            with self._lock:
                self._inflight = None
            inflight.set_exception(exc)
            raise
        with self._lock:
            self._keys, self._expires, self._inflight = keys, self._clock() + self._ttl_s, None
        inflight.set_result(None)


class IdentityVerifier:
    """Turns a request's unverified `Caller` into a `VerifiedIdentity`, None (no user), or a 401."""

    def __init__(self, keys: SigningKeys, source_url: str) -> None:
        self._keys = keys
        self._source_url = source_url  # where the keys come from, as messages name it

    def verify(self, caller: Caller, ctx: RequestContext) -> VerifiedIdentity | None:
        token = caller.id_token
        if not token:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise refused("it is not a signed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg != ALGORITHM:
            raise refused(f"it is signed with {str(alg)[:20]!r}; Grafana signs ID tokens with {ALGORITHM}")
        if not isinstance(kid, str) or not kid:
            raise refused("its header names no signing key (kid)")
        typ = header.get("typ")
        if typ is not None and str(typ).lower() != "jwt":  # Grafana 11.1+ writes "jwt"; access tokens differ
            raise refused(f"it is a {str(typ)[:20]!r} token, not an ID token")
        key = self._keys.key(kid, ctx)
        if key is None:
            raise refused(f"it is signed with a key (kid {kid[:60]!r}) that Grafana at {self._source_url} "
                          "does not publish at /api/signing-keys/keys; the data source's Grafana URL must be "
                          "the Grafana that sends the requests")
        claims = self._claims(token, key)
        return self._identity(claims, caller)

    @staticmethod
    def _claims(token: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], leeway=CLOCK_SKEW_S,
                              options={"require": REQUIRED_CLAIMS, "verify_aud": False, "verify_iss": False})
        except jwt.ExpiredSignatureError:
            raise refused("it has expired; reload the page (Grafana signs a new one every few minutes) "
                          "and check the clocks of Grafana's and the plugin's hosts") from None
        except jwt.ImmatureSignatureError:
            raise refused("it is not valid yet; check the clocks of Grafana's and the plugin's "
                          "hosts") from None
        except jwt.InvalidSignatureError:
            raise refused("its signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refused(f"it has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise refused(f"it is malformed ({type(exc).__name__})") from None

    @staticmethod
    def _identity(claims: Mapping[str, Any], caller: Caller) -> VerifiedIdentity | None:
        if not caller.app_url:
            raise refused("Grafana sent no GF_APP_URL with the request to check the token's issuer against")
        issuer = normalised_url(str(claims.get("iss")))
        if issuer != normalised_url(caller.app_url):
            raise refused(f"it was issued by {str(claims.get('iss'))[:100]!r}, not by the Grafana that sent "
                          f"this request ({caller.app_url[:100]!r}, its root_url)")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) \
            else []
        if f"org:{caller.org_id}" not in audiences:
            raise refused(f"it was issued for {', '.join(map(str, audiences))[:80] or 'no organisation'}, "
                          f"not for this request's organisation (org:{caller.org_id})")
        namespace = claims.get("namespace")
        if caller.namespace and namespace != caller.namespace:
            raise refused(f"it was issued for namespace {str(namespace)[:40]!r}, not for this request's "
                          f"({caller.namespace[:40]!r})")
        subject = str(claims.get("sub"))
        kind = claims.get("type") or subject.partition(":")[0]
        if kind not in USER_TYPES:
            return None  # anonymous, render, ...: verified, but nobody whose permissions Grafana can search
        if not subject.startswith(f"{kind}:") or len(subject) <= len(kind) + 1:
            raise refused(f"its subject does not name a {kind}")
        role = claims.get("role")
        return VerifiedIdentity(issuer, caller.org_id, subject, str(kind),
                                role if isinstance(role, str) else "")
