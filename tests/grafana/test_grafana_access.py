"""Who may read what through `source: grafana`, through the plugin started as Grafana starts it and the
Go stand-in for Grafana (ID tokens signed as Grafana signs them, its key set, its permission search).

A signed-in user reads a target only with `datasources:query` on it; a token that does not verify is a
401, never "no user"; a request without a user reads only the admin's allowed targets; on an old
open-source Grafana without the permission search the org role decides, and nowhere else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from conftest import plugin_context
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.identity import Caller
from toto_datasource.core.request import RequestContext
from toto_datasource.core.settings import Secret
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.sources.grafana.access import AnswerCache
from toto_datasource.sources.grafana.settings import GrafanaSettings
from toto_datasource.sources.grafana.source import GrafanaSource

from . import standin
from .test_grafana_plugin import (
    RAMP_LABELS,
    RAMPS,
    context,
    frames,
    grafana_query,
    inline_query,
    preview,
    query,
)

STANDIN = "standin"  # the stand-in's data source uid; alice and the admin may query it, bob may not
DENIED = "you may not query data source"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def forged(header: dict, claims: dict, sign=lambda data: b"") -> str:
    """A JWT with any header, claims and signature (what an attacker can put in X-Grafana-Id)."""
    data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{data}.{b64(sign(data.encode()))}"


def published_key_pem(grafana: standin.Standin) -> tuple[str, bytes]:
    """The stand-in's current public key (kid, PEM): what an HS256 key-confusion attack signs with."""
    (key, *_) = reversed(httpx.get(grafana.url + "/api/signing-keys/keys", timeout=10).json()["keys"])
    public = jwt.PyJWK(key).key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key["kid"], pem


def error(response: pb.DataResponse) -> tuple[int, str]:
    assert response.error, "expected an error"
    return response.status, response.error


def inline() -> dict:
    return inline_query(RAMPS, RAMP_LABELS)


@pytest.fixture(scope="module")
def old_oss_grafana() -> Iterator[standin.Standin]:
    """A Grafana whose permission search answers 404 (an open-source Grafana before the search)."""
    server = standin.start("", "-no-permission-search")
    try:
        yield server
    finally:
        server.stop()


def _plugin(tiny_checkpoint: Path, edition: str) -> Iterator[PluginProcess]:
    """The plugin as Grafana of `edition` starts it (GF_EDITION), its model loaded."""
    with PluginProcess(env={"GF_PLUGIN_MODEL": str(tiny_checkpoint), "GF_EDITION": edition}) as p:
        health = p.wait_until_loaded(plugin_context())
        assert health.status == pb.CheckHealthResponse.OK, health.message
        yield p


@pytest.fixture(scope="module")
def plugin_oss(tiny_checkpoint: Path) -> Iterator[PluginProcess]:
    yield from _plugin(tiny_checkpoint, "Open Source")  # what Grafana OSS sets GF_EDITION to


@pytest.fixture(scope="module")
def plugin_enterprise(tiny_checkpoint: Path) -> Iterator[PluginProcess]:
    yield from _plugin(tiny_checkpoint, "Enterprise")


def test_a_permitted_user_forecasts_and_an_unpermitted_one_gets_403_for_that_query_only(
    plugin: PluginProcess, grafana: standin.Standin
) -> None:
    ctx = context(grafana.url, uid="access-users")
    alice = grafana.id_token("user:u-alice", role="Viewer")
    assert len(frames(query(plugin, ctx, {"A": grafana_query("multi")}, id_token=alice)["A"])) == 4

    bob = grafana.id_token("user:u-bob", role="Viewer")  # a member without datasources:query on it
    out = query(
        plugin,
        ctx,
        {
            "G": grafana_query("multi"),
            "I": inline(),
            "X": grafana_query("multi", target={"uid": "no-such-ds", "type": "loki"}),
        },
        id_token=bob,
    )
    status, message = error(out["G"])
    assert status == 403 and message.startswith(f"{DENIED} {STANDIN}:") and bob not in message
    assert len(frames(out["I"])) == 4
    # a uid that does not exist is refused in the same words: no oracle for which uids exist
    assert error(out["X"]) == (403, message.replace(STANDIN, "no-such-ds"))
    # alice may query the stand-in and prom only
    status, message = error(
        query(
            plugin,
            ctx,
            {"X": grafana_query("multi", target={"uid": "no-such-ds", "type": "loki"})},
            id_token=alice,
        )["X"]
    )
    assert status == 403 and message.startswith(f"{DENIED} no-such-ds:")


def _refused_tokens(grafana: standin.Standin) -> dict[str, tuple[str, str]]:
    """Tokens that must not verify, each with the words its 401 says."""
    good = grafana.id_token("user:u-admin", role="Admin")
    claims = claims_of(good)
    kid, pem = published_key_pem(grafana)
    header = {"alg": "ES256", "kid": kid, "typ": "jwt"}
    head, _, signature = good.split(".")
    stranger = ec.generate_private_key(ec.SECP256R1())
    return {
        "expired": (grafana.id_token("user:u-admin", role="Admin", expiresIn=-300), "it has expired"),
        "wrong-org": (
            grafana.id_token("user:u-admin", role="Admin", org=2),
            "it was issued for org:2, not for this request's organisation (org:1)",
        ),
        "wrong-issuer": (
            grafana.id_token("user:u-admin", role="Admin", issuer="http://grafana.example/"),
            "it was issued by 'http://grafana.example/'",
        ),
        "hs256-with-the-public-key": (
            forged({**header, "alg": "HS256"}, claims, lambda d: hmac.new(pem, d, hashlib.sha256).digest()),
            "it is signed with 'HS256'; Grafana signs ID tokens with ES256",
        ),
        "alg-none": (forged({**header, "alg": "none"}, claims), "it is signed with 'none'"),
        "unknown-kid": (
            jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-published"}),
            "signed with a key (kid 'not-published') that Grafana at",
        ),
        "wrong-namespace": (
            grafana.id_token("user:u-admin", role="Admin", namespace="stacks-99"),
            "issued for namespace 'stacks-99', not for this request's ('default')",
        ),
        "tampered": (
            f"{head}.{b64(json.dumps({**claims, 'sub': 'user:u-bob'}).encode())}.{signature}",
            "its signature does not verify",
        ),
        "not-a-jwt": ("Bearer nonsense", "it is not a signed JWT"),
    }


def test_tokens_that_do_not_verify_are_refused_with_401(
    plugin: PluginProcess, grafana: standin.Standin
) -> None:
    """Each refused token is its query's 401 saying why (the token in neither the message nor the plugin's
    log), even on a target the data source allows without a user: a bad token is never "no user". The
    inline query still answers."""
    ctx = context(grafana.url, uid="access-refused", allowedTargets=[STANDIN])
    ctx.namespace = "default"  # org 1's namespace, as Grafana 12 sends it
    good = grafana.id_token("user:u-admin", role="Admin")
    assert len(frames(query(plugin, ctx, {"G": grafana_query("multi")}, id_token=good)["G"])) == 4
    refused = _refused_tokens(grafana)
    for case, (token, words) in refused.items():
        out = query(plugin, ctx, {"G": grafana_query("multi"), "I": inline()}, id_token=token)
        status, message = error(out["G"])
        assert status == 401 and words in message, (case, message)
        assert message.startswith("Grafana's ID token for this request (X-Grafana-Id) was refused")
        assert not any(part in message for part in token.split(".") if len(part) > 8), case
        assert len(frames(out["I"])) == 4, case
    log = plugin.log_path.read_text()  # type: ignore[attr-defined]
    assert not any(token in log for token, _ in [*refused.values(), (good, "")])


def test_a_rotated_signing_key_is_picked_up(plugin: PluginProcess, grafana: standin.Standin) -> None:
    ctx = context(grafana.url, uid="access-rotation")
    before = grafana.id_token("user:u-alice", role="Viewer")
    assert len(frames(query(plugin, ctx, {"A": grafana_query("multi")}, id_token=before)["A"])) == 4
    kid = grafana.rotate_key()
    after = grafana.id_token("user:u-alice", role="Viewer")
    assert jwt.get_unverified_header(after)["kid"] == kid != jwt.get_unverified_header(before)["kid"]
    out = query(plugin, ctx, {"A": grafana_query("multi"), "B": grafana_query("multi")}, id_token=after)
    assert len(frames(out["A"])) == len(frames(out["B"])) == 4
    # the previous key is still published during the rotation: its tokens still verify
    assert len(frames(query(plugin, ctx, {"A": grafana_query("multi")}, id_token=before)["A"])) == 4


def test_without_a_user_only_allowed_targets_are_read(
    plugin: PluginProcess, grafana: standin.Standin
) -> None:
    """An alert rule's request (FromAlert, no ID token) reads an allow-listed target and nothing else;
    so does a verified anonymous viewer; with no allowed target the 403 says how to allow one."""
    ctx = context(grafana.url, uid="access-alerts", allowedTargets=[STANDIN])
    out = query(
        plugin,
        ctx,
        {
            "A": grafana_query("multi"),
            "P": grafana_query("multi", target={"uid": "prom", "type": "prometheus"}),
        },
        alert=True,
    )
    assert len(frames(out["A"])) == 2  # alert frames: the median only
    status, message = error(out["P"])
    assert status == 403 and "data source prom is not among the data sources allowed" in message
    assert "Allowed targets" in message

    anonymous = grafana.id_token("anonymous:anon", type="anonymous", role="Viewer")
    out = query(
        plugin,
        ctx,
        {
            "A": grafana_query("multi"),
            "P": grafana_query("multi", target={"uid": "prom", "type": "prometheus"}),
        },
        id_token=anonymous,
    )
    assert len(frames(out["A"])) == 4 and error(out["P"])[0] == 403

    empty = context(grafana.url, uid="access-no-targets")
    status, message = error(query(plugin, empty, {"A": grafana_query("multi")}, alert=True)["A"])
    assert status == 403 and "no data source is allowed for such requests" in message
    assert "alert rules" in message and "Allowed targets" in message


def test_a_forged_from_alert_header_bypasses_nothing(plugin: PluginProcess, grafana: standin.Standin) -> None:
    """FromAlert on a user's request: the user's permission still decides (not the allow-list), and a
    token that does not verify is still a 401."""
    ctx = context(grafana.url, uid="access-forged-alert", allowedTargets=[STANDIN])
    bob = grafana.id_token("user:u-bob", role="Viewer")
    status, message = error(query(plugin, ctx, {"A": grafana_query("multi")}, alert=True, id_token=bob)["A"])
    assert status == 403 and message.startswith(f"{DENIED} {STANDIN}")
    tampered, _ = _refused_tokens(grafana)["tampered"]
    status, _ = error(query(plugin, ctx, {"A": grafana_query("multi")}, alert=True, id_token=tampered)["A"])
    assert status == 401


def test_a_token_of_another_organisation_is_refused(plugin: PluginProcess, grafana: standin.Standin) -> None:
    """The request is org 2's (and so is its token): the token verifies, but the service account
    belongs to org 1, which CheckHealth says; a token of org 1 on org 2's request is a 401."""
    org2 = context(grafana.url, uid="access-org2", org_id=2)
    org1_token = grafana.id_token("user:u-alice", role="Viewer")
    status, message = error(query(plugin, org2, {"A": grafana_query("multi")}, id_token=org1_token)["A"])
    assert status == 401 and "not for this request's organisation (org:2)" in message
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=org2), timeout=60)
    assert health.status == pb.CheckHealthResponse.ERROR
    assert "belongs to organisation 1" in health.message and "organisation 2" in health.message


def test_call_resource_needs_a_users_token(plugin: PluginProcess, grafana: standin.Standin) -> None:
    """The editor's preview runs the target's query: no token is a 403 even for an allowed target (a
    browser's request always has a user); a user is checked as a panel's query is."""
    ctx = context(grafana.url, uid="access-preview", allowedTargets=[STANDIN])
    body = grafana_query("several")
    resp = preview(plugin, ctx, body)
    assert resp.code == 403 and "no signed-in user's ID token" in json.loads(resp.body)["error"]
    resp = preview(plugin, ctx, body, grafana.id_token("user:u-bob", role="Viewer"))
    assert resp.code == 403 and json.loads(resp.body)["error"].startswith(f"{DENIED} {STANDIN}")
    resp = preview(plugin, ctx, body, grafana.id_token("user:u-alice", role="Viewer"))
    assert resp.code == 200 and json.loads(resp.body)["series"] == 3


def test_old_open_source_grafana_decides_by_role(
    plugin_oss: PluginProcess, old_oss_grafana: standin.Standin
) -> None:
    """No permission search (404) on a Grafana that says it is open source: no per-data-source
    permissions exist there, so a verified Viewer of the org reads and role None does not."""
    ctx = context(old_oss_grafana.url, uid="access-old-oss")
    viewer = old_oss_grafana.id_token("user:u-bob", role="Viewer")
    assert len(frames(query(plugin_oss, ctx, {"A": grafana_query("multi")}, id_token=viewer)["A"])) == 4
    nobody = old_oss_grafana.id_token("user:u-none", role="None")
    status, message = error(query(plugin_oss, ctx, {"A": grafana_query("multi")}, id_token=nobody)["A"])
    assert status == 403 and message.startswith(f"{DENIED} {STANDIN}")
    health = plugin_oss.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
    assert health.status == pb.CheckHealthResponse.OK, health.message
    assert "role Viewer, Editor or Admin may read any target" in health.message


@pytest.mark.parametrize("edition", ["enterprise", "unknown"])
def test_a_404_refuses_unless_grafana_is_open_source(
    plugin_enterprise: PluginProcess, plugin: PluginProcess, old_oss_grafana: standin.Standin, edition: str
) -> None:
    """The same 404 on Enterprise (which has per-data-source permissions), or where the plugin does not
    know the edition (no GF_EDITION), refuses the Viewer, and CheckHealth says why."""
    host, words = {
        "enterprise": (plugin_enterprise, "Grafana's edition is 'Enterprise'"),
        "unknown": (plugin, "GF_EDITION is not set"),
    }[edition]
    ctx = context(old_oss_grafana.url, uid=f"access-404-{edition}")
    viewer = old_oss_grafana.id_token("user:u-bob", role="Viewer")
    status, message = error(query(host, ctx, {"A": grafana_query("multi")}, id_token=viewer)["A"])
    assert status == 403 and "cannot check your permission" in message and words in message
    health = host.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
    assert health.status == pb.CheckHealthResponse.ERROR and words in health.message


def test_a_service_account_without_permission_read_refuses_everywhere(
    plugin: PluginProcess,
    plugin_oss: PluginProcess,
    plugin_enterprise: PluginProcess,
    grafana: standin.Standin,
) -> None:
    """Its permission search is a 403 on every edition: the query is refused (not let through), and
    CheckHealth names the permission the service account lacks."""
    ctx = context(grafana.url, standin.TOKEN_NO_RBAC, uid="access-no-rbac")
    admin = grafana.id_token("user:u-admin", role="Admin")
    for host in (plugin, plugin_oss, plugin_enterprise):
        status, message = error(query(host, ctx, {"A": grafana_query("multi")}, id_token=admin)["A"])
        assert status == 403 and "users.permissions:read" in message, message
        health = host.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
        assert health.status == pb.CheckHealthResponse.ERROR and "users.permissions:read" in health.message


def test_health_says_what_requests_without_a_user_may_read(
    plugin: PluginProcess, grafana: standin.Standin
) -> None:
    ctx = context(grafana.url, uid="access-health", allowedTargets=[STANDIN, "prom"])
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
    assert health.status == pb.CheckHealthResponse.OK, health.message
    assert "users' permissions are checked per target; alert rules may read prom, standin" in health.message


def test_answers_are_kept_at_most_a_minute(grafana: standin.Standin) -> None:
    """A permission revoked (or granted) in Grafana takes effect once the kept answer is 60 s old."""
    now = [1000.0]
    answers = AnswerCache(clock=lambda: now[0])
    source = GrafanaSource(
        GrafanaSettings(url=grafana.url, token=Secret(standin.TOKEN)), 100, answers=answers
    )
    carol = "user:u-carol"
    grafana.set_permissions(carol, [f"datasources:uid:{STANDIN}"])
    ctx = RequestContext(caller=Caller(grafana.id_token(carol, role="Viewer"), 1, "", grafana.app_url))
    try:
        source.access.check(STANDIN, ctx)  # allowed, and kept
        grafana.set_permissions(carol, [])
        now[0] += 59
        source.access.check(STANDIN, ctx)  # still the kept answer
        now[0] += 2
        with pytest.raises(Exception, match=DENIED):
            source.access.check(STANDIN, ctx)
        grafana.set_permissions(carol, ["datasources:*"])
        now[0] += 59
        with pytest.raises(Exception, match=DENIED):  # the denial is kept too
            source.access.check(STANDIN, ctx)
        now[0] += 2
        source.access.check(STANDIN, ctx)
    finally:
        source.close()
