"""What the container gives this process: cores, memory, and how contended its CPUs are.

Why: `os.cpu_count()` and `/proc/stat` describe the host. In a pod limited to 2 CPUs on a 64-core
node the plugin ran 64 CPU slots and sized its intra-op threads by the neighbours' load. Here the
limits come from the process's own cgroup (v2 unified, v1 controllers, or a hybrid of both), walked
up to the top of what is mounted (a parent's limit binds its children), and from the CPU affinity.

Pure readers: every function takes the cgroup mount point (`root`, normally /sys/fs/cgroup) and
the text of /proc/self/cgroup, so tests point them at fixture trees. No imports from other
layers of the package.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = "/sys/fs/cgroup"
# v1 writes a page-rounded LONG_MAX for "no limit"; anything this large is no limit.
NO_LIMIT_BYTES = 1 << 60


@dataclass(frozen=True)
class CgroupDirs:
    """The directories of this process's cgroup, innermost first, up to the mount's top, for the
    unified (v2) hierarchy and for each v1 controller that is mounted."""

    unified: tuple[Path, ...] = ()
    v1: dict[str, tuple[Path, ...]] | None = None

    def controller(self, name: str) -> tuple[Path, ...]:
        return (self.v1 or {}).get(name, ())


def parse_proc_cgroup(text: str) -> tuple[str | None, dict[str, str]]:
    """/proc/self/cgroup → (the unified path or None, {v1 controller: path})."""
    unified: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            unified = path
        for name in controllers.split(","):
            if name:
                v1[name] = path
    return unified, v1


def _chain(mount: Path, path: str) -> tuple[Path, ...]:
    """The cgroup's directory under `mount` and each parent up to `mount`. A container with its own
    cgroup namespace sees "/" and its own cgroup at the mount; a host path that is not under this
    mount (no namespace, a bind-mounted subtree) falls back to the mount itself."""
    if not mount.is_dir():
        return ()
    here = mount / path.strip("/") if path.strip("/") else mount
    if not here.is_dir():
        here = mount
    dirs = [here]
    while here != mount and mount in here.parents:
        here = here.parent
        dirs.append(here)
    return tuple(dirs)


def find_cgroup(root: str | Path = ROOT, proc_cgroup: str | None = None) -> CgroupDirs:
    """This process's cgroup directories under `root`; `proc_cgroup` defaults to /proc/self/cgroup."""
    root = Path(root)
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            proc_cgroup = ""
    unified_path, v1_paths = parse_proc_cgroup(proc_cgroup)
    if (root / "cgroup.controllers").exists():  # pure v2: the unified hierarchy is mounted at root
        return CgroupDirs(unified=_chain(root, unified_path or "/"))
    unified = _chain(root / "unified", unified_path or "/") if (root / "unified").is_dir() else ()
    v1: dict[str, tuple[Path, ...]] = {}
    for name, path in v1_paths.items():
        for mount in (root / name, *(d for d in _v1_mounts(root) if name in d.name.split(","))):
            if mount.is_dir():
                v1[name] = _chain(mount, path)
                break
    return CgroupDirs(unified=unified, v1=v1)


def _v1_mounts(root: Path) -> list[Path]:
    try:
        return [d for d in root.iterdir() if "," in d.name]  # cpu,cpuacct and the like
    except OSError:
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def parse_cpu_list(text: str) -> int:
    """How many CPUs a list like "0-3,8,10-11" names (0 for an empty or malformed list)."""
    count = 0
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            count += int(hi or lo) - int(lo) + 1
        except ValueError:
            return 0
    return count


def cpu_quota(dirs: CgroupDirs) -> float | None:
    """Cores the CPU bandwidth limit allows (v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cfs_period_us`),
    the smallest along the chain; None without a limit."""
    limits: list[float] = []
    for d in dirs.unified:
        text = _read(d / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and quota.isdigit() and period.strip().isdigit() and int(period) > 0:
                limits.append(int(quota) / int(period))
    for d in dirs.controller("cpu"):
        quota_text, period_text = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
        try:
            quota, period = int(quota_text or "-1"), int(period_text or "0")
        except ValueError:
            continue
        if quota > 0 and period > 0:
            limits.append(quota / period)
    return min(limits) if limits else None


def cpuset_count(dirs: CgroupDirs) -> int | None:
    """CPUs of the cgroup's cpuset (v2 `cpuset.cpus.effective`, v1 `cpuset.effective_cpus` or
    `cpuset.cpus`), innermost first; None when no cpuset is readable."""
    candidates = [(d, ("cpuset.cpus.effective",)) for d in dirs.unified[:1]]
    candidates += [(d, ("cpuset.effective_cpus", "cpuset.cpus")) for d in dirs.controller("cpuset")[:1]]
    for d, names in candidates:
        for name in names:
            text = _read(d / name)
            if text and (count := parse_cpu_list(text)) > 0:
                return count
    return None


def memory_limit(dirs: CgroupDirs) -> int | None:
    """Bytes the cgroup may use (v2 `memory.max`, v1 `memory.limit_in_bytes`), the smallest along
    the chain; None without a limit."""
    limits: list[int] = []
    for d in dirs.unified:
        text = _read(d / "memory.max")
        if text and text.isdigit():
            limits.append(int(text))
    for d in dirs.controller("memory"):
        text = _read(d / "memory.limit_in_bytes")
        if text and text.isdigit():
            limits.append(int(text))
    limits = [x for x in limits if 0 < x < NO_LIMIT_BYTES]
    return min(limits) if limits else None


def memory_working_set(dirs: CgroupDirs) -> int | None:
    """Bytes the cgroup uses now that it could not give back: usage (v2 `memory.current`, v1
    `memory.usage_in_bytes`) less its inactive file cache (`memory.stat`), as the kubelet counts it."""
    for directories, usage_name, inactive_key in (
        (dirs.unified[:1], "memory.current", "inactive_file"),
        (dirs.controller("memory")[:1], "memory.usage_in_bytes", "total_inactive_file"),
    ):
        for directory in directories:
            text = _read(directory / usage_name)
            if not (text and text.isdigit()):
                continue
            inactive = 0
            for line in (_read(directory / "memory.stat") or "").splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key and value.strip().isdigit():
                    inactive = int(value)
            return max(0, int(text) - inactive)
    return None


def affinity_count() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS
        return None


def available_cores(dirs: CgroupDirs, affinity: int | None, host_cpus: int | None) -> float:
    """Cores this process may use: the least of the CPU quota, the cpuset and the affinity (a
    quota may be fractional: 1.5 cores), never below one CPU's worth of 1.0 when a quota is below
    it. Without any of them, the host's CPU count."""
    bounds = [float(x) for x in (cpuset_count(dirs), affinity) if x]
    if (quota := cpu_quota(dirs)) is not None:
        bounds.append(quota)
    cores = min(bounds) if bounds else float(host_cpus or 1)
    return max(1.0, cores)


def whole_cores(cores: float) -> int:
    """Threads or slots for `cores` (1.5 cores run 2 threads: the quota is spent over a period)."""
    return max(1, math.ceil(cores - 1e-9))


@dataclass(frozen=True)
class ContentionFiles:
    """Where contention can be read for this cgroup: PSI (`cpu.pressure`, v2), the throttling
    counters (`cpu.stat`) when a quota is set, or neither (the caller falls back to /proc/stat)."""

    pressure: Path | None
    throttling: Path | None  # v2 cpu.stat (throttled_usec) or v1 cpu.stat (throttled_time, ns)
    throttling_v1: bool = False


def contention_files(dirs: CgroupDirs) -> ContentionFiles:
    pressure = next((d / "cpu.pressure" for d in dirs.unified[:1] if _read(d / "cpu.pressure")), None)
    throttling: Path | None = None
    v1 = False
    if cpu_quota(dirs) is not None:
        for d in dirs.unified:
            if (text := _read(d / "cpu.max")) and not text.startswith("max") and _read(d / "cpu.stat"):
                throttling = d / "cpu.stat"
                break
        if throttling is None:
            for d in dirs.controller("cpu"):
                if (_read(d / "cpu.cfs_quota_us") or "-1") not in ("-1", "") and _read(d / "cpu.stat"):
                    throttling, v1 = d / "cpu.stat", True
                    break
    return ContentionFiles(pressure, throttling, v1)


def parse_pressure_some(text: str) -> float | None:
    """Seconds during which some runnable task of the cgroup waited for a CPU (`some ... total=`, µs)."""
    for line in text.splitlines():
        if line.startswith("some"):
            for field in line.split():
                if field.startswith("total="):
                    try:
                        return int(field[6:]) / 1e6
                    except ValueError:
                        return None
    return None


def parse_throttled(text: str, v1: bool) -> float | None:
    """Seconds the cgroup was throttled by its quota (v2 `throttled_usec`, v1 `throttled_time` ns)."""
    key, scale = ("throttled_time", 1e9) if v1 else ("throttled_usec", 1e6)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value) / scale
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class ContainerLimits:
    """What `read_container()` found: the inputs of a process's sizing (ProcessConfig's resources)."""

    cores: float  # CPUs this process may use (quota, cpuset, affinity; else the host's)
    memory_limit_bytes: int | None  # the cgroup's memory limit, None without one
    quota_cores: float | None
    cpuset_cpus: int | None
    affinity_cpus: int | None


def read_container(root: str | Path = ROOT, proc_cgroup: str | None = None,
                   affinity: int | None = None, host_cpus: int | None = None) -> ContainerLimits:
    """Cores and memory this process may use, read once at start. `affinity` and `host_cpus`
    default to this process's sched_getaffinity and os.cpu_count()."""
    dirs = find_cgroup(root, proc_cgroup)
    affinity = affinity if affinity is not None else affinity_count()
    host_cpus = host_cpus if host_cpus is not None else os.cpu_count()
    return ContainerLimits(
        cores=available_cores(dirs, affinity, host_cpus), memory_limit_bytes=memory_limit(dirs),
        quota_cores=cpu_quota(dirs), cpuset_cpus=cpuset_count(dirs), affinity_cpus=affinity,
    )
