"""Fixture cgroup trees (v1 and v2) and a real cgroup of this machine for a child process."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Files under root ("cpu/cpu.cfs_quota_us": "200000"), directories made as needed."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


def v2_tree(root: Path, cpu_max: str = "max 100000", memory_max: str = "max", cpuset: str = "0-63",
            pressure: str | None = None, inner: str = "") -> Path:
    """A pure v2 mount; `inner` puts the process's cgroup in a child directory."""
    base = f"{inner}/" if inner else ""
    files = {"cgroup.controllers": "cpuset cpu io memory pids", f"{base}cpu.max": cpu_max,
             f"{base}memory.max": memory_max, f"{base}cpuset.cpus.effective": cpuset,
             f"{base}cpu.stat": "usage_usec 1000\nnr_throttled 0\nthrottled_usec 0",
             f"{base}memory.current": "104857600", f"{base}memory.stat": "anon 1\ninactive_file 4194304"}
    if pressure is not None:
        files[f"{base}cpu.pressure"] = pressure
    return write_tree(root, files)


def v1_tree(root: Path, quota: int = -1, period: int = 100000, limit: int = 9223372036854771712,
            cpus: str = "0-63", path: str = "") -> Path:
    base = f"/{path}" if path else ""
    return write_tree(root, {
        f"cpu{base}/cpu.cfs_quota_us": str(quota), f"cpu{base}/cpu.cfs_period_us": str(period),
        f"cpu{base}/cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 5000000",
        f"cpuset{base}/cpuset.cpus": cpus, f"memory{base}/memory.limit_in_bytes": str(limit),
        f"memory{base}/memory.usage_in_bytes": "209715200",
        f"memory{base}/memory.stat": "cache 1\ntotal_inactive_file 10485760",
    })


def v1_proc_cgroup(path: str = "/") -> str:
    return f"4:memory:{path}\n3:cpuset:{path}\n2:cpu,cpuacct:{path}\n0::/\n"


@contextlib.contextmanager
def real_v1_cgroup(controller: str, settings: dict[str, str]) -> Iterator[Path | None]:
    """A fresh cgroup under this machine's v1 `controller` mount with `settings` written, or None
    where there is no such writable mount (pure v2 hosts, no root). Removed afterwards."""
    mount = Path("/sys/fs/cgroup") / controller
    if not (mount / "cgroup.procs").exists() or not os.access(mount, os.W_OK):
        yield None
        return
    directory = mount / f"toto-test-{uuid.uuid4().hex[:8]}"
    try:
        directory.mkdir()
    except OSError:
        yield None
        return
    try:
        for name, value in settings.items():
            (directory / name).write_text(value)
        yield directory
    finally:
        with contextlib.suppress(OSError):
            directory.rmdir()
