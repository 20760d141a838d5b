"""The total budget per upstream call, against loopback servers that misbehave.

No timing asserts: a server that trickles its headers sets `finished` only when it sent them all,
so "the client gave up first" is an ordering (finished still unset when the error arrives).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from toto_datasource.core.errors import BackendError
from toto_datasource.core.request import Budget, RequestContext, answer_deadline
from toto_datasource.sources.grafana.client import GrafanaClient
from toto_datasource.sources.http_budget import (
    BodyTooLarge,
    BudgetExceeded,
    FetchLimiter,
    FetchPermitsExhausted,
    budget_transport,
    fetch_within,
)

from .fault_servers import blackhole, echo_request, huge_body, slow_headers


def client() -> httpx.Client:
    return httpx.Client(transport=budget_transport(), timeout=httpx.Timeout(30))


NO_DEADLINE = RequestContext()


def test_budget_is_the_smaller_of_timeout_and_what_is_left_of_the_deadline() -> None:
    now = 100.0

    def at(deadline: float | None) -> RequestContext:
        return RequestContext(deadline=deadline, clock=lambda: now)

    b = at(None).budget(5)
    assert (b.seconds, b.deadline) == (5, 105.0) and "timeout of 5s" in b.reason
    assert not b.capped_by_request
    b = at(now + 9).budget(30)
    assert b.seconds == 9 and "Grafana's deadline" in b.reason and b.capped_by_request
    assert at(now - 1).budget(30).seconds == 0


def test_answers_are_due_a_margin_before_grafanas_deadline() -> None:
    """One margin rule: min(1 s, 10 %) of what Grafana gave is kept for encoding and sending."""
    assert answer_deadline(30.0, clock=lambda: 0.0) == 29.0
    assert answer_deadline(2.0, clock=lambda: 0.0) == 1.8
    assert answer_deadline(None) is None


def test_slow_headers_end_at_the_budget_not_after_every_byte() -> None:
    with slow_headers(interval_s=0.5) as server, client() as c:  # headers would take > 50 s
        request = c.build_request("GET", server.url + "/api/v1/query")
        with pytest.raises(BudgetExceeded) as err:
            fetch_within(c, request, NO_DEADLINE.budget(0.6), NO_DEADLINE, max_body_bytes=1 << 20)
        assert not server.finished.is_set()
    assert str(err.value) == "did not answer within 0.6s (the data source's timeout of 0.6s)"


def test_plain_httpx_per_phase_timeouts_do_not_bound_slow_headers() -> None:
    """Why the transport exists: with a read timeout far above the byte interval, httpx waits
    for the whole trickle (here 0.02 s x ~120 bytes, over twice the 1 s timeout) and then
    succeeds. (A 0.2 s timeout flaked at load average 3: one 0.2 s scheduling gap is enough.)"""
    with slow_headers(interval_s=0.02) as server, httpx.Client(timeout=httpx.Timeout(1.0)) as c:
        assert c.get(server.url + "/").status_code == 200
        # the server marks the trickle finished just after its last byte: wait for that event
        assert server.finished.wait(5)


def test_blackhole_ends_at_the_budget() -> None:
    with blackhole() as server, client() as c:
        request = c.build_request("POST", server.url + "/api/v1/query_range", data={"query": "up"})
        with pytest.raises(BudgetExceeded):
            fetch_within(c, request, Budget(0.3, _soon(0.3), "t"), NO_DEADLINE, max_body_bytes=1 << 20)
        assert server.requests  # it was reached


def _soon(seconds: float) -> float:
    return time.monotonic() + seconds


def test_huge_body_is_cut_at_the_limit() -> None:
    with huge_body() as server, client() as c:
        request = c.build_request("GET", server.url + "/")
        with pytest.raises(BodyTooLarge):
            fetch_within(c, request, Budget(20, _soon(20), "t"), NO_DEADLINE, max_body_bytes=4 << 20)


def test_echoing_upstream_body_is_returned_for_the_caller_to_redact() -> None:
    from toto_datasource.core.redact import Redactor

    with echo_request() as server, client() as c:
        auth = {"Authorization": "Basic dTpzZWNyZXQx"}
        request = c.build_request("GET", server.url + "/api/v1/query?token=QueryTok99", headers=auth)
        fetched = fetch_within(c, request, Budget(10, _soon(10), "t"), NO_DEADLINE, max_body_bytes=1 << 20)
    text = fetched.body.decode()
    assert fetched.status == 502 and "QueryTok99" in text and "dTpzZWNyZXQx" in text
    clean = Redactor()(text)
    assert "QueryTok99" not in clean and "dTpzZWNyZXQx" not in clean


def test_transport_hook_still_exists() -> None:
    """budget_transport replaces a private attribute; an httpx upgrade that moves it fails here."""
    t = budget_transport()
    assert type(t._pool._network_backend).__name__ == "_Backend"


def test_fetch_limiter_waits_within_budget_then_refuses() -> None:
    limiter = FetchLimiter(limit=2)
    inside = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with limiter.permit(Budget(10, _soon(10), "t"), NO_DEADLINE):
            inside.wait()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    with (
        pytest.raises(FetchPermitsExhausted, match="2 requests to this data source"),
        limiter.permit(Budget(0.05, _soon(0.05), "t"), NO_DEADLINE),
    ):
        pass
    release.set()
    for t in threads:
        t.join()
    with limiter.permit(Budget(1, _soon(1), "t"), NO_DEADLINE):
        pass


def test_grafana_api_calls_share_the_per_data_source_fetch_bound() -> None:
    """The grafana source fetches through the same machinery as Prometheus: with one permit and a
    stuck upstream, a second query never reaches the upstream and gets Prometheus's 504 "busy"."""
    target = {"uid": "prom", "type": "prometheus"}
    outcome: list[BackendError] = []
    with blackhole() as hole:
        client = GrafanaClient(hole.url, "PlantedGrafanaTok1", timeout_s=30, fetch_permits=1)

        def stuck() -> None:
            try:
                client.query(target, {"expr": "up"}, "A", 0, 600_000, 60_000, 10,
                             RequestContext(deadline=_soon(30)))
            except BackendError as exc:
                outcome.append(exc)

        first = threading.Thread(target=stuck)
        first.start()
        assert hole.requests.wait_for(1, timeout=10)
        with pytest.raises(BackendError) as err:
            client.query(target, {"expr": "up"}, "B", 0, 600_000, 60_000, 10,
                         RequestContext(deadline=_soon(0.3)))
        assert len(hole.requests) == 1  # the second call waited for the permit, never reached Grafana
    first.join(10)  # leaving the blackhole hangs up on the stuck call
    client.close()
    assert (err.value.status, err.value.source) == (504, "downstream")
    assert err.value.message.startswith(f"Grafana at {hole.url} is busy: 1 requests to this data source were "
                                        "already in flight and none finished within"), err.value.message
    assert not first.is_alive() and outcome and outcome[0].status == 502
