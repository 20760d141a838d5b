"""What this process may use of the machine: cores and memory, as its container allows.

Why: `os.cpu_count()` is the host's. In a pod limited to 2 CPUs on a 64-core node, sizing CPU
slots, intra-op threads and batch caps by 64 cores runs 32× too many threads at once. The
numbers come from the process's cgroup and CPU affinity (core/cgroup.py), read once at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import cgroup


@dataclass(frozen=True)
class Resources:
    cores: float = 1.0  # CPUs this process may use (a quota may give a fraction)
    memory_limit_bytes: int | None = None  # None: no limit below the machine's memory


def read_resources(root: str | Path = cgroup.ROOT) -> Resources:
    """The cores of the cgroup's CPU quota, its cpuset and this process's affinity (the least of
    them; the host's CPU count without any), and the cgroup's memory limit."""
    limits = cgroup.read_container(root)
    return Resources(cores=limits.cores, memory_limit_bytes=limits.memory_limit_bytes)
