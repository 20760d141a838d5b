"""What this process may use of the machine: cores and memory, as its container allows.

Why: `os.cpu_count()` is the host's. In a pod limited to 2 CPUs on a 64-core node, sizing CPU
slots, intra-op threads and batch caps by 64 cores runs 32× too many threads at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    cores: float = 1.0  # CPUs this process may use (a quota may give a fraction)
    memory_limit_bytes: int | None = None  # None: no limit below the machine's memory


def read_resources() -> Resources:
    """The cores of this process's CPU affinity."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        cores = float(os.cpu_count() or 1)
    return Resources(cores=max(1.0, cores))
