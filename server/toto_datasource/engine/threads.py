"""How many intra-op threads the next CPU model call gets: the cores other processes leave free.

Why: torch's OpenMP regions end in a barrier, so an intra-op thread that another process preempts
stalls all the others. Measured on the 2-core CPU (22m, 8 rows × 2048 points, bench/cpu_contention.py):
2 threads take 0.26 s alone but 0.82 s while another process keeps one core busy, when 1 thread
takes 0.50 s either way. A plugin shares its host with Grafana (and a bench with its load
generator), so before each call the governor reads how much CPU the rest of the machine used since
the previous call (/proc/stat minus this process's own time) and runs on the cores left over,
never fewer than one. TOTO_TORCH_THREADS=N pins the count instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.config import ProcessConfig

MIN_INTERVAL_S = 0.05  # below this the jiffy counts (100 Hz) say nothing: keep the last choice


@dataclass(frozen=True)
class CpuSample:
    machine_busy: float  # seconds of CPU time all processes spent, summed over cores
    machine_total: float  # seconds of CPU time elapsed, summed over cores
    own: float  # seconds of CPU time this process spent


_HZ = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
_proc_stat: int | None = None


def read_cpu_sample() -> CpuSample | None:
    """From /proc/stat (Linux) and os.times(); None elsewhere, where the governor keeps every core.
    Runs before every model call: one pread of /proc/stat kept open and os.times() (the jiffies of
    /proc/self/stat) take 12 us, where opening and reading both files took 50-90."""
    global _proc_stat
    try:
        if _proc_stat is None:
            _proc_stat = os.open("/proc/stat", os.O_RDONLY)  # kept open; not inherited by children
        fields = [float(x) for x in os.pread(_proc_stat, 512, 0).split(b"\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle
    own = os.times()
    return CpuSample(busy / _HZ, (busy + idle) / _HZ, own.user + own.system)


class ThreadGovernor:
    def __init__(self, cores: int, read: Callable[[], CpuSample | None] = read_cpu_sample) -> None:
        self.cores = max(1, cores)
        self._read = read
        self._last = read()
        self.threads = self.cores

    def others_cores(self, now: CpuSample) -> float | None:
        """Cores' worth of CPU the rest of the machine used since the last sample."""
        last = self._last
        if last is None or now.machine_total - last.machine_total <= 0:
            return None
        elapsed_s = (now.machine_total - last.machine_total) / self.cores
        if elapsed_s < MIN_INTERVAL_S:
            return None
        others = (now.machine_busy - last.machine_busy) - (now.own - last.own)
        return max(0.0, others / elapsed_s)

    def choose(self) -> int:
        """The thread count for the next call (updates the sample window)."""
        now = self._read()
        if now is None:
            return self.threads
        others = self.others_cores(now)
        if others is not None:
            self._last = now
            self.threads = max(1, min(self.cores, round(self.cores - others)))
        return self.threads


def governor_for(device: str, config: ProcessConfig) -> ThreadGovernor | None:
    """A governor for a CPU model, or None: on a GPU, or with TOTO_TORCH_THREADS pinning the count."""
    if device != "cpu" or config.torch_threads:
        return None
    return ThreadGovernor(max(1, round(config.cores)))


def pin_threads(config: ProcessConfig) -> None:
    """TOTO_TORCH_THREADS=N (N > 0): a fixed intra-op thread count, no governor."""
    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)


def governed(run: Callable[[Any], Any], governor: ThreadGovernor | None) -> Callable[[Any], Any]:
    """Wrap a CPU batch runner: each call first gets the thread count the governor chooses."""
    if governor is None:
        return run
    import torch

    def runner(batch: Any) -> Any:
        threads = governor.choose()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return run(batch)

    return runner
