"""One-series overhead as Grafana sees it: QueryData through Grafana's own Go client vs the model call.

1. the direct model call: the engine's prepared input through one run_forecast, in this process,
   median of `--repeats` (before the plugin starts, so the two never compete for the cores);
2. the same series as an inline query through the Go SDK's pluginv2 client and go-plugin, the way
   Grafana calls the plugin (tests/conformance/bench_test.go, BenchmarkQueryDataOneSeries), median;
   and per call, end to end minus the seconds the plugin itself counted inside the model call
   (toto_inference_seconds, read through CollectMetrics around each call).

    .venv/bin/python bench/grafana_overhead.py [--size 22m] [--repeats 21] [--results]

With `--against DIR` (another checkout of this project whose grafana-plugin/dist is built, e.g. the
previous release), step 2 runs in both trees, alternating `--rounds` times, so two versions of the
plugin are compared side by side in one run on the same machine, model and query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from model_calls import direct_call, load_model, machine, random_checkpoint  # noqa: E402
from results_file import heading, publish  # noqa: E402

STEP_MS = 60_000


def series(context: int) -> np.ndarray:
    """The serving bench's kind of series: a level, a daily-ish sine, 2 % noise; 4 decimals."""
    rng = np.random.default_rng(1)
    t = np.arange(context)
    level = rng.uniform(1, 1e4)
    values = level * (1 + 0.2 * np.sin(2 * np.pi * t / 1440)) + rng.normal(0, 0.02, context) * level
    return np.round(values, 4)


def tree_name(tree: Path) -> str:
    """A checkout as the table names it: its commit."""
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True)
    return head.stdout.strip() or tree.name


def go_benchmark(tree: Path, env: dict[str, str], repeats: int) -> tuple[float, float, float]:
    """BenchmarkQueryDataOneSeries against `tree`'s built plugin: (median, p10, beyond-model) ms."""
    out = subprocess.run(
        ["bash", str(tree / "tests" / "conformance" / "run.sh"), "-run", "^$", "-bench",
         "QueryDataOneSeries", "-benchtime", f"{repeats}x"],
        env={**env, "TOTO_CONFORMANCE_INSTALLS": "0"}, capture_output=True, text=True, timeout=900,
    )
    found = [re.search(rf"([0-9.]+) {name}\b", out.stdout)
             for name in ("ms-median", "ms-p10", "ms-beyond-model-median")]
    if out.returncode != 0 or not all(found):
        sys.exit(f"the Go benchmark in {tree} failed (rc {out.returncode}):\n{out.stdout[-3000:]}\n"
                 f"{out.stderr[-3000:]}")
    go_ms, go_p10, beyond_ms = (float(m.group(1)) for m in found if m)
    return go_ms, go_p10, beyond_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="22m")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--horizon", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--results", action="store_true")
    ap.add_argument("--against", type=Path, help="another checkout to compare with, alternating")
    ap.add_argument("--rounds", type=int, default=3, help="alternations with --against")
    args = ap.parse_args()

    checkpoint = random_checkpoint(args.size)
    values = series(args.context)
    end_ms = (int(dt.datetime.now(dt.UTC).timestamp() * 1000) // STEP_MS) * STEP_MS
    timestamps = [end_ms - (args.context - 1 - i) * STEP_MS for i in range(args.context)]
    model = {"source": "inline", "horizon": args.horizon, "contextLength": args.context,
             "series": [{"name": "s0", "labels": {"host": "h0"}, "timestamps": timestamps,
                         "values": values.tolist()}]}
    query_file = ROOT / "var" / "bench" / "one_series_query.json"
    query_file.parent.mkdir(parents=True, exist_ok=True)
    query_file.write_text(json.dumps(model))

    loaded = load_model(checkpoint)
    for _ in range(3):
        direct_call(loaded, values[None, :], args.horizon)
    direct = [direct_call(loaded, values[None, :], args.horizon) for _ in range(args.repeats)]
    direct_ms = 1000 * float(np.median(direct))
    del loaded

    env = {**os.environ, "TOTO_CONFORMANCE_MODEL": str(checkpoint), "TOTO_BENCH_QUERY_JSON": str(query_file)}
    trees = [ROOT] if args.against is None else [ROOT, args.against.resolve()]
    runs: dict[Path, list[tuple[float, float, float]]] = {tree: [] for tree in trees}
    for _ in range(1 if args.against is None else args.rounds):
        for tree in trees:
            runs[tree].append(go_benchmark(tree, env, args.repeats))

    lines = [
        *heading(f"bench/grafana_overhead.py --size {args.size} --repeats {args.repeats}"
                 + (f" --against {args.against} --rounds {args.rounds}" if args.against else ""), machine()),
        f"One inline series × {args.context} points, horizon {args.horizon}, history frame included, "
        "result cache off; plugin started by go-plugin with Grafana's environment, called with the Go "
        "SDK's pluginv2 client.",
        "",
        "| plugin | round | direct model call (ms, median) "
        "| QueryData via Grafana's Go client (ms, median / p10) "
        "| e2e − direct (ms) | e2e − the plugin's own model time, same call (ms, median) |",
        "|---|---|---|---|---|---|",
    ]
    for tree in trees:
        for i, (go_ms, go_p10, beyond_ms) in enumerate(runs[tree], 1):
            lines.append(f"| {tree_name(tree)} | {i} | {direct_ms:.1f} | {go_ms:.1f} / {go_p10:.1f} | "
                         f"{go_ms - direct_ms:+.1f} | {beyond_ms:+.1f} |")
    if args.against is not None:
        new, old = (float(np.median([r[2] for r in runs[t]])) for t in trees)
        lines += ["", f"Beyond-model time, median over rounds: {tree_name(trees[0])} {new:+.1f} ms, "
                      f"{tree_name(trees[1])} {old:+.1f} ms (ratio {new / old:.2f})."]
    lines += [
        "",
        "The last column is robust to the machine's speed drifting between the two phases (this shared "
        "VM's model call varied 59–85 ms from run to run): both times come from the same call.",
        "",
    ]
    publish("\n".join(lines), args.results)


if __name__ == "__main__":
    main()
