"""Model speed at the hardware's limit: achieved FLOP/s as a fraction of measured peak.

For each model size and batch size (context 2048, horizon 256 = 72 patches, univariate):
  * eager      — toto2 as shipped (unit-scaling layers), through `forecast()`;
  * folded     — engine/fold.py: constants folded into plain nn.Linear (exact);
  * int8       — folded + dynamic int8 quantisation (approximate, opt-in).
Each with its max error vs eager fp32 (max |Δ| / output range). The peak is the median fp32 matmul
rate at 4096² and on Toto's own layer shapes; FLOPs per series come from torch.utils.flop_counter.
The CPU is shared: load average before/after and the share of 2 cores this process actually got
(CPU time / wall time / threads) are recorded with the numbers.

    .venv/bin/python bench/model_speed.py [--size 22m] [--batch 1 --batch 32] [--results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from toto_datasource.core.settings import ModelSettings  # noqa: E402
from toto_datasource.engine import fold  # noqa: E402
from toto_datasource.engine.prepare import FORECAST_KWARGS  # noqa: E402
from toto_datasource.engine.toto import TotoModel, load_toto, run_forecast, write_random_checkpoint  # noqa: E402

CONTEXT, HORIZON = 2048, 256


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        return m.group(1).strip() if m else "unknown CPU"
    except (OSError, subprocess.SubprocessError):
        return "unknown CPU"


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_peak(n: int, k: int, m: int, repeats: int) -> float:
    a, b = torch.randn(n, k), torch.randn(k, m)
    return 2 * n * k * m / timed(lambda: a @ b, repeats) / 1e9


def flops_per_series(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    one = {k: v[:1] for k, v in inputs.items()}
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.forecast(one, HORIZON, **FORECAST_KWARGS)
    return counter.get_total_flops()


def _eager(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return model.forecast(inputs, HORIZON, **FORECAST_KWARGS).double().numpy()


def _engine(loaded: TotoModel, values: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return run_forecast(loaded, values, mask, ids, HORIZON)


@dataclass
class Row:
    size: str
    variant: str
    batch: int
    seconds: float
    gflops: float
    peak_fraction: float
    error: float


def run_size(size: str, batches: list[int], repeats: int, peak: float,
             workdir: Path) -> tuple[list[Row], float]:
    from toto2 import Toto2Model

    checkpoint = write_random_checkpoint(workdir / f"toto-2.0-{size}-random", size)
    settings = ModelSettings(checkpoint=str(checkpoint), device="cpu")
    original = Toto2Model.from_pretrained(str(checkpoint)).eval()
    folded = load_toto(settings)
    int8 = load_toto(replace(settings, dtype="int8"))
    inputs = fold.probe_inputs(max(batches), CONTEXT, level=1.0)
    flops = flops_per_series(original, inputs)
    rows: list[Row] = []
    for batch in batches:
        part = {k: v[:batch] for k, v in inputs.items()}
        values, mask, ids = (part[k].numpy() for k in ("target", "target_mask", "series_ids"))
        reference = _eager(original, part)
        spread = float(reference.max() - reference.min()) or 1.0
        on = functools.partial(_engine, values=values, mask=mask, ids=ids)
        variants = [("eager (as shipped)", functools.partial(_eager, original, part)),
                    ("folded", functools.partial(on, folded)),
                    ("int8 (approx.)", functools.partial(on, int8))]
        for name, fn in variants:
            out = fn()
            seconds = timed(fn, repeats)
            gflops = flops * batch / seconds / 1e9
            rows.append(Row(size, name, batch, seconds, gflops, gflops / peak,
                            float(np.abs(out - reference).max()) / spread))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)  # progress: a run can take many minutes
    return rows, flops


def _usage() -> float:
    r = os.times()
    return r.user + r.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", action="append", choices=["4m", "22m", "313m"])
    parser.add_argument("--batch", action="append", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    sizes = args.size or ["4m", "22m"]
    batches = sorted(args.batch or [1, 8, 32, 64])
    threads = torch.get_num_threads()
    load_before = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), _usage()

    peak = statistics.median([matmul_peak(4096, 4096, 4096, 1) for _ in range(max(3, args.repeats))])
    print(f"  fp32 peak {peak:.0f} GFLOP/s", file=sys.stderr, flush=True)
    tokens = 32 * (CONTEXT + HORIZON) // 32  # batch 32 × 72 patches
    layer_peaks = {
        "in_proj 2304×512·512×1536": matmul_peak(tokens, 512, 1536, args.repeats),
        "fc1 2304×512·512×2736": matmul_peak(tokens, 512, 2736, args.repeats),
        "fc2 2304×1368·1368×512": matmul_peak(tokens, 1368, 512, args.repeats),
    }
    all_rows: list[Row] = []
    flops: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows, flops[size] = run_size(size, batches, args.repeats, peak, Path(tmp))
            all_rows += rows
    wall, cpu = time.perf_counter() - wall0, _usage() - cpu0
    load_after = os.getloadavg()
    share = cpu / wall / threads

    lines = [
        f"## Model speed at the hardware's limit — {dt.date.today().isoformat()} (bench/model_speed.py)",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads, "
        f"Python {platform.python_version()}. Load average before {load_before[0]:.1f} / after "
        f"{load_after[0]:.1f}; this process got {share:.0%} of {threads} cores over the run "
        "(shared machine: lower means contention, and every rate below is depressed by it).",
        "",
        f"fp32 matmul peak (4096², median): **{peak:.0f} GFLOP/s**; on Toto 22m layer shapes at batch 32: "
        + ", ".join(f"{k} {v:.0f}" for k, v in layer_peaks.items()) + " GFLOP/s.",
        "FLOPs per series (context 2048, horizon 256): "
        + ", ".join(f"{s} {f / 1e9:.2f} GFLOP" for s, f in flops.items()) + ".",
        "",
        "| model | variant | batch | s/call | series/s | GFLOP/s | % of peak | max err / range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in all_rows:
        lines.append(f"| {r.size} | {r.variant} | {r.batch} | {r.seconds:.3f} | {r.batch / r.seconds:.1f} | "
                     f"{r.gflops:.0f} | {r.peak_fraction:.0%} | {r.error:.1e} |")
    lines.append("")
    for size in sizes:
        exact = [r for r in all_rows if r.size == size and "int8" not in r.variant]
        best = max(exact, key=lambda r: r.batch / r.seconds)
        lines.append(f"Best offline batch for {size} (exact variants): {best.batch} rows, {best.variant}, "
                     f"{best.batch / best.seconds:.1f} series/s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
