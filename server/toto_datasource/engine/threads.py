"""How many intra-op threads the next CPU model call gets: the cores others leave free.

Why: torch's OpenMP regions end in a barrier, so an intra-op thread that another process preempts
stalls all the others. Measured on the 2-core CPU (22m, 8 rows × 2048 points, bench/cpu_contention.py):
2 threads take 0.26 s alone but 0.82 s while another process keeps one core busy, when 1 thread
takes 0.50 s either way. A plugin shares its CPUs with Grafana (and a bench with its load
generator), so before each call the governor reads how contended this process's CPUs were since
the previous call and runs on the cores left over, never fewer than one. Where the contention
comes from (core/cgroup.py): the cgroup's pressure stall information (`cpu.pressure`: time some
runnable task of the cgroup waited for a CPU), else its throttling counters when a quota is set,
else — only where neither exists — the whole machine's /proc/stat minus this process's own time.
A cgroup's own `cpu.stat` usage is not used: it shows its own use, not its neighbours'.
TOTO_TORCH_THREADS=N (ProcessConfig.torch_threads) pins the count instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import cgroup
from ..core.config import ProcessConfig

MIN_INTERVAL_S = 0.05  # below this the counters (100 Hz jiffies) say nothing: keep the last choice


@dataclass(frozen=True)
class ContentionSample:
    wall_s: float  # a clock, seconds
    others_cpu_s: float  # cumulative CPU-seconds (summed over cores) this process could not have


Reader = Callable[[], ContentionSample | None]
_HZ = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


class _Pread:
    """One file kept open and re-read with pread: 12 us a sample, where open + read took 50-90."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = None

    def text(self, size: int = 1024) -> str | None:
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)  # not inherited by children
            return os.pread(self._fd, size, 0).decode("ascii", "replace")
        except OSError:
            return None


def proc_stat_reader(path: str = "/proc/stat") -> Reader:
    """Others' CPU time from the whole machine's /proc/stat minus this process's own (os.times)."""
    source = _Pread(path)
    host_cpus = max(1, os.cpu_count() or 1)

    def read() -> ContentionSample | None:
        text = source.text(512)
        if text is None:
            return None
        try:
            fields = [float(x) for x in text.split("\n", 1)[0].split()[1:]]
        except ValueError:
            return None
        if len(fields) < 5:
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        busy = sum(fields[:8]) - idle
        own = os.times()
        return ContentionSample((busy + idle) / _HZ / host_cpus, busy / _HZ - (own.user + own.system))

    return read


def pressure_reader(path: Path, cores: float, clock: Callable[[], float] = time.monotonic) -> Reader:
    """PSI: the share of wall time some task of the cgroup waited for a CPU, as that share of its
    cores (all of them when something always waited)."""
    source = _Pread(path)

    def read() -> ContentionSample | None:
        text = source.text()
        some = cgroup.parse_pressure_some(text) if text else None
        return None if some is None else ContentionSample(clock(), some * cores)

    return read


def throttling_reader(path: Path, v1: bool) -> Reader:
    """The quota's throttled time (summed over the cgroup's CPUs) as CPU time taken away."""
    source = _Pread(path)

    def read() -> ContentionSample | None:
        text = source.text()
        throttled = cgroup.parse_throttled(text, v1) if text else None
        return None if throttled is None else ContentionSample(time.monotonic(), throttled)

    return read


def contention_reader(dirs: cgroup.CgroupDirs, cores: float) -> tuple[Reader, str]:
    """The best contention signal this process's cgroup offers, and its name for the model info."""
    files = cgroup.contention_files(dirs)
    if files.pressure is not None:
        return pressure_reader(files.pressure, cores), f"cgroup pressure ({files.pressure})"
    if files.throttling is not None:
        reader = throttling_reader(files.throttling, files.throttling_v1)
        return reader, f"cgroup throttling ({files.throttling})"
    return proc_stat_reader(), "the machine's /proc/stat"


class ThreadGovernor:
    def __init__(self, cores: int, read: Reader | None = None) -> None:
        """`read`: the contention source (default: the best this process's cgroup offers)."""
        self.cores = max(1, cores)
        if read is None:
            dirs, container = container_cores()
            read = contention_reader(dirs, container)[0]
        self._read = read
        self._last = read()
        self.threads = self.cores

    def others_cores(self, now: ContentionSample) -> float | None:
        """Cores' worth of CPU others took since the last sample."""
        last = self._last
        if last is None or now.wall_s - last.wall_s < MIN_INTERVAL_S:
            return None
        return max(0.0, (now.others_cpu_s - last.others_cpu_s) / (now.wall_s - last.wall_s))

    def choose(self) -> int:
        """The thread count for the next call (updates the sample window)."""
        now = self._read()
        if now is None:
            return self.threads
        others = self.others_cores(now)
        if others is not None:
            self._last = now
            self.threads = max(1, min(self.cores, round(self.cores - others)))
        elif self._last is None:
            self._last = now
        return self.threads


def container_cores(root: str | Path = cgroup.ROOT) -> tuple[cgroup.CgroupDirs, float]:
    """This process's cgroup and the cores it allows (core/cgroup.py)."""
    dirs = cgroup.find_cgroup(root)
    return dirs, cgroup.available_cores(dirs, cgroup.affinity_count(), os.cpu_count())


def governor_for(device: str, config: ProcessConfig) -> ThreadGovernor | None:
    """A governor for a CPU model, or None: on a GPU, or with TOTO_TORCH_THREADS pinning the count.
    Its ceiling is the container's cores (config.cores: quota, cpuset, affinity), never the host's;
    its contention signal the best the process's cgroup offers."""
    if device != "cpu" or config.torch_threads:
        return None
    dirs, cores = container_cores()
    return ThreadGovernor(cgroup.whole_cores(config.cores), contention_reader(dirs, cores)[0])


def pin_threads(config: ProcessConfig) -> None:
    """TOTO_TORCH_THREADS=N (N > 0): a fixed intra-op thread count, no governor. Without it the
    governor sets the count before every call, never above the container's cores (torch's own
    default is the host's: 64 threads in a 2-CPU pod on a 64-core node)."""
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
