"""CPU contention benchmark: a model call while another process keeps a core busy.

The plugin shares its host with Grafana (and a load test with its load generator). For each
intra-op thread policy — every core (torch's default), one core fewer, and the adaptive governor
of engine/threads.py — the median time of one model call (Toto, `--rows` × 2048 points, horizon
256) alone and while a busy Python process spins on one core, side by side in one run.

    PYTHONPATH=server .venv/bin/python bench/cpu_contention.py [--size 22m] [--rows 8] [--results]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
sys.path.insert(0, str(ROOT / "bench"))


def spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="22m")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--results", action="store_true")
    args = ap.parse_args()

    import torch
    from model_calls import machine, random_checkpoint
    from results_file import heading, publish
    from toto_datasource.core.settings import ModelSettings
    from toto_datasource.engine.threads import ThreadGovernor, governed
    from toto_datasource.engine.toto import load_toto, run_forecast

    checkpoint = random_checkpoint(args.size)
    loaded = load_toto(ModelSettings(checkpoint=str(checkpoint), device="cpu"))
    cores = torch.get_num_threads()
    rng = np.random.default_rng(0)
    values = rng.normal(size=(args.rows, 1, 2048)).astype(np.float32)
    mask = np.ones_like(values, bool)
    ids = np.zeros((args.rows, 1), np.int64)

    def call(_batch: object = None) -> None:
        run_forecast(loaded, values, mask, ids, 256)

    policies = {f"{cores} threads (all cores, torch's default)": cores}
    if cores > 1:
        policies[f"{cores - 1} thread(s) (one core left free)"] = cores - 1
    policies["adaptive (engine/threads.py)"] = 0

    def timed(policy: int) -> float:
        governor = ThreadGovernor(cores) if policy == 0 else None
        if policy:
            torch.set_num_threads(policy)
        run = governed(call, governor)
        run(None)  # settles the governor's first window and the allocator
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            run(None)
            times.append(time.perf_counter() - t)
        torch.set_num_threads(cores)
        return float(np.median(times))

    results = {}
    for name, policy in policies.items():
        alone = timed(policy)
        stop = time.time() + 3600
        busy = mp.Process(target=spin, args=(stop,), daemon=True)
        busy.start()
        try:
            loaded_s = timed(policy)
        finally:
            busy.terminate()
            busy.join()
        results[name] = (alone, loaded_s)
        print(f"{name}: alone {alone:.3f} s, with a busy process {loaded_s:.3f} s", flush=True)

    best_alone = min(a for a, _ in results.values())
    lines = [
        *heading(f"bench/cpu_contention.py --size {args.size} --rows {args.rows}", machine()),
        f"One call: {args.rows} rows × 2048 points, horizon 256, folded eager model, median of "
        f"{args.repeats}. \"Busy\": another process spinning on one core.",
        "",
        "| intra-op threads | alone (s) | with a busy process (s) | busy / alone | × best alone |",
        "|---|---|---|---|---|",
        *(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} | {b / best_alone:.2f} |"
          for name, (a, b) in results.items()),
        "",
    ]
    publish("\n".join(lines), args.results)


if __name__ == "__main__":
    main()
