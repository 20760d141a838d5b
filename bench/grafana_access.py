"""Benchmark (not a test): what verifying the caller's ID token and checking its permission on the
target add to a `source: grafana` query, side by side in one run.

Starts the Go stand-in for Grafana (ES256 ID tokens, /api/signing-keys/keys, the permission search,
/api/ds/query) on 127.0.0.1 and times, interleaved in every round so they share the machine's noise:

- baseline:     GrafanaClient.query + regular_grid.place (the source's fetch without any check);
- no user:      GrafanaSource.fetch of an allowed target without a token (an alert rule's request);
- user, warm:   GrafanaSource.fetch with a verified user's token, keys and answer already kept;

and the check alone (TargetAccess.check), warm, with the key set not yet fetched (cold keys: one
GET /api/signing-keys/keys), with the answer not yet kept (one permission search), and both cold.

    PYTHONPATH=server .venv/bin/python bench/grafana_access.py [--rounds 200] [--points 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "server"))

from grafana import standin  # noqa: E402
from toto_datasource.core.identity import Caller  # noqa: E402
from toto_datasource.core.request import RequestContext  # noqa: E402
from toto_datasource.core.settings import Secret  # noqa: E402
from toto_datasource.query.model import ForecastQuery  # noqa: E402
from toto_datasource.sources.base import HistoryRequest, TimeGrid  # noqa: E402
from toto_datasource.sources.grafana import GrafanaClient, GrafanaSettings, GrafanaSource  # noqa: E402
from toto_datasource.sources.grafana.access import AnswerCache, TargetAccess  # noqa: E402
from toto_datasource.sources.grafana.identity import SigningKeys  # noqa: E402
from toto_datasource.sources.grafana.source import GrafanaSpec  # noqa: E402
from toto_datasource.sources.regular_grid import place  # noqa: E402

TARGET = "standin"


class _Query:
    """What fetch reads of a query: its source spec and refId."""

    def __init__(self, spec: GrafanaSpec) -> None:
        self.source, self.ref_id = spec, "A"


def ms(seconds: list[float]) -> tuple[float, float]:
    """Median and p90 in milliseconds."""
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def interleaved(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    for fn in cases.values():  # warm-up: connections, keys, answers
        fn()
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - started)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--points", type=int, default=512)
    args = ap.parse_args()
    grafana = standin.start()
    try:
        settings = GrafanaSettings(url=grafana.url, token=Secret(standin.TOKEN),
                                   allowed_targets=frozenset({TARGET}))
        source = GrafanaSource(settings, max_series=1000)
        client = GrafanaClient(grafana.url, standin.TOKEN)
        grid = TimeGrid(end_ms=1_700_000_040_000, step_ms=60_000, count=args.points)
        spec = GrafanaSpec(TARGET, standin.STANDIN_TYPE, {"scenario": "multi"})
        query: ForecastQuery = _Query(spec)  # type: ignore[assignment]
        token = grafana.id_token("user:u-alice", role="Viewer")
        user = RequestContext(caller=Caller(id_token=token, org_id=1, app_url=grafana.app_url))
        nobody = RequestContext(caller=Caller(org_id=1, app_url=grafana.app_url))

        def baseline() -> None:
            got = client.query(spec.datasource, spec.source_query, "A", grid.start_ms, grid.end_ms,
                               grid.step_ms, grid.count, nobody)
            place(grid, [(s.timestamps_ms, s.values) for s in got.series])

        fetches = interleaved({
            "baseline (no check)": baseline,
            "no user, allowed target": lambda: source.fetch(HistoryRequest(grid, query, nobody)),
            "verified user, warm": lambda: source.fetch(HistoryRequest(grid, query, user)),
        }, args.rounds)

        kept_keys = SigningKeys(lambda ctx: grafana_keys(client, ctx))
        kept_answers = AnswerCache()
        warm = TargetAccess(client, frozenset(), "", answers=kept_answers, keys=kept_keys)

        def cold_keys() -> None:  # a new key set each time: one GET /api/signing-keys/keys
            TargetAccess(client, frozenset(), "", answers=kept_answers).check(TARGET, user)

        def cold_answer() -> None:  # a new answer cache each time: one permission search
            TargetAccess(client, frozenset(), "", answers=AnswerCache(), keys=kept_keys).check(TARGET, user)

        def cold_both() -> None:
            TargetAccess(client, frozenset(), "").check(TARGET, user)

        checks = interleaved({
            "check: warm": lambda: warm.check(TARGET, user),
            "check: cold keys": cold_keys,
            "check: cold answer": cold_answer,
            "check: cold keys and answer": cold_both,
        }, args.rounds)
        source.close()
        client.close()
    finally:
        grafana.stop()
    load = os.getloadavg()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    print(f"Machine: {machine}, load {load[0]:.2f}/{load[1]:.2f}; {args.rounds} interleaved rounds, "
          f"2 series x {args.points} points through the Go stand-in on 127.0.0.1")
    print("| path | median (ms) | p90 (ms) | added to the baseline, median (ms) |")
    print("|---|---|---|---|")
    base = ms(fetches["baseline (no check)"])[0]
    for name, times in fetches.items():
        median, p90 = ms(times)
        print(f"| {name} | {median:.3f} | {p90:.3f} | {median - base:+.3f} |")
    for name, times in checks.items():
        median, p90 = ms(times)
        print(f"| {name} | {median:.3f} | {p90:.3f} | (the check alone) |")


def grafana_keys(client: GrafanaClient, ctx: RequestContext) -> dict:
    status, doc = client.get_json("/api/signing-keys/keys", None, ctx, auth=False)
    assert status == 200 and isinstance(doc, dict)
    return doc


if __name__ == "__main__":
    main()
