"""Container-aware sizing (core/cgroup.py): cores, memory limit and contention from the process's
cgroup, v1 and v2, with and without a quota; and this machine's real cgroup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from toto_datasource.core import cgroup
from toto_datasource.engine.local_toto import memory_capped_cells
from toto_datasource.engine.threads import ThreadGovernor, contention_reader, pressure_reader

from .cgroup_trees import real_v1_cgroup, v1_proc_cgroup, v1_tree, v2_tree

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]


def test_v2_quota_and_memory_limit_bound_a_pod_on_a_big_node(tmp_path: Path) -> None:
    """A pod limited to 2 CPUs and 1 GiB on a 64-core node: 2 cores, not 64."""
    v2_tree(tmp_path, cpu_max="200000 100000", memory_max=str(GIB))
    found = cgroup.read_container(tmp_path, "0::/\n", affinity=64, host_cpus=64)
    assert (found.cores, found.quota_cores, found.memory_limit_bytes) == (2.0, 2.0, GIB)


def test_v2_fractional_quota_runs_whole_threads(tmp_path: Path) -> None:
    v2_tree(tmp_path, cpu_max="150000 100000")
    found = cgroup.read_container(tmp_path, "0::/\n", affinity=64, host_cpus=64)
    assert found.cores == 1.5 and cgroup.whole_cores(found.cores) == 2
    v2_tree(tmp_path, cpu_max="20000 100000")  # a fifth of a CPU still runs one thread
    assert cgroup.read_container(tmp_path, "0::/\n", affinity=64, host_cpus=64).cores == 1.0


def test_v2_without_quota_uses_cpuset_and_affinity(tmp_path: Path) -> None:
    v2_tree(tmp_path, cpu_max="max 100000", memory_max="max", cpuset="0-3,8-11")
    found = cgroup.read_container(tmp_path, "0::/\n", affinity=64, host_cpus=64)
    assert (found.cores, found.quota_cores, found.cpuset_cpus) == (8.0, None, 8)
    assert found.memory_limit_bytes is None
    assert cgroup.read_container(tmp_path, "0::/\n", affinity=3, host_cpus=64).cores == 3.0


def test_v2_parent_limit_binds_the_process_cgroup(tmp_path: Path) -> None:
    """The process sits in a child cgroup with no limit of its own; the pod's limit is its parent's."""
    v2_tree(tmp_path / "kubepods" / "pod1", cpu_max="100000 100000", memory_max=str(2 * GIB))
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    v2_tree(tmp_path / "kubepods" / "pod1" / "ctr", cpu_max="max 100000", memory_max="max")
    (tmp_path / "kubepods" / "pod1" / "ctr" / "cgroup.controllers").unlink()
    found = cgroup.read_container(tmp_path, "0::/kubepods/pod1/ctr\n", affinity=64, host_cpus=64)
    assert (found.cores, found.memory_limit_bytes) == (1.0, 2 * GIB)


def test_v1_cfs_quota_and_memory_limit(tmp_path: Path) -> None:
    v1_tree(tmp_path, quota=300000, period=100000, limit=512 << 20, cpus="0-15", path="docker/abc")
    found = cgroup.read_container(tmp_path, v1_proc_cgroup("/docker/abc"), affinity=16, host_cpus=16)
    assert (found.cores, found.quota_cores, found.cpuset_cpus) == (3.0, 3.0, 16)
    assert found.memory_limit_bytes == 512 << 20


def test_v1_without_quota_or_limit(tmp_path: Path) -> None:
    """-1 quota and v1's page-rounded LONG_MAX mean no limit; a namespaced "/" path reads the mount."""
    v1_tree(tmp_path, cpus="0-5")
    found = cgroup.read_container(tmp_path, v1_proc_cgroup("/"), affinity=64, host_cpus=64)
    assert (found.cores, found.quota_cores, found.memory_limit_bytes) == (6.0, None, None)


def test_no_cgroup_at_all_falls_back_to_affinity_then_host(tmp_path: Path) -> None:
    assert cgroup.read_container(tmp_path / "missing", "", affinity=5, host_cpus=64).cores == 5.0
    assert cgroup.available_cores(cgroup.find_cgroup(tmp_path / "missing", ""), None, 7) == 7.0


def test_working_set_excludes_inactive_file_cache(tmp_path: Path) -> None:
    v2_tree(tmp_path)
    mib = 1 << 20
    assert cgroup.memory_working_set(cgroup.find_cgroup(tmp_path, "0::/\n")) == 100 * mib - 4 * mib
    v1 = tmp_path / "v1"
    v1_tree(v1)
    assert cgroup.memory_working_set(cgroup.find_cgroup(v1, v1_proc_cgroup())) == 200 * mib - 10 * mib


def test_contention_prefers_pressure_then_throttling_then_proc_stat(tmp_path: Path) -> None:
    psi = v2_tree(tmp_path / "psi", cpu_max="200000 100000", pressure="some avg10=0 avg60=0 avg300=0 total=0")
    _, name = contention_reader(cgroup.find_cgroup(psi, "0::/\n"), 2.0)
    assert name.startswith("cgroup pressure")
    throttled = v2_tree(tmp_path / "quota", cpu_max="200000 100000")
    _, name = contention_reader(cgroup.find_cgroup(throttled, "0::/\n"), 2.0)
    assert name.startswith("cgroup throttling")
    v1 = v1_tree(tmp_path / "v1", quota=200000)
    _, name = contention_reader(cgroup.find_cgroup(v1, v1_proc_cgroup()), 2.0)
    assert name.startswith("cgroup throttling")
    neither = v2_tree(tmp_path / "none")  # no PSI, no quota: the cgroup cannot see its neighbours
    _, name = contention_reader(cgroup.find_cgroup(neither, "0::/\n"), 2.0)
    assert name == "the machine's /proc/stat"


def test_pressure_stalls_take_intra_op_threads_away_and_give_them_back(tmp_path: Path) -> None:
    """Some task of the cgroup waited for a CPU half of the last interval: one of 2 cores is
    contended; no stall since: both again."""
    root = v2_tree(tmp_path, cpu_max="200000 100000", pressure="some avg10=0 avg60=0 avg300=0 total=0")
    clock = iter([0.0, 1.0, 2.0])
    pressure = cgroup.contention_files(cgroup.find_cgroup(root, "0::/\n")).pressure
    assert pressure is not None
    governor = ThreadGovernor(2, pressure_reader(pressure, 2.0, clock=lambda: next(clock)))
    (root / "cpu.pressure").write_text("some avg10=50 avg60=0 avg300=0 total=500000\nfull total=0\n")
    assert governor.choose() == 1
    assert governor.choose() == 2


def test_memory_limit_caps_the_rows_of_a_model_call() -> None:
    default = 32 * 2048
    assert memory_capped_cells(default, None, None) == default  # no limit: the CPU default
    assert memory_capped_cells(default, 8 * GIB, GIB) == default  # room to spare
    capped = memory_capped_cells(default, GIB, 700 << 20)  # 1 GiB pod, 700 MiB in use after the load
    assert 2048 <= capped < default
    assert memory_capped_cells(default, GIB, GIB) == 2048  # never below one series of 2048 points


def test_this_machine_cgroup_is_read() -> None:
    found = cgroup.read_container()
    assert 1.0 <= found.cores <= (os.cpu_count() or 1)
    assert found.cores <= len(os.sched_getaffinity(0))


def _in_cgroup(directory: Path) -> dict:
    """read_container() in a child process placed in `directory` before Python starts."""
    code = ("import json, dataclasses; from toto_datasource.core import cgroup; "
            "print(json.dumps(dataclasses.asdict(cgroup.read_container())))")
    script = f'echo $$ > {directory}/cgroup.procs && exec "{sys.executable}" -c "{code}"'
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server")}
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def test_a_real_memory_cgroup_limit_is_seen() -> None:
    with real_v1_cgroup("memory", {"memory.limit_in_bytes": str(3 * GIB)}) as directory:
        if directory is None:
            import pytest

            pytest.skip("no writable v1 memory cgroup mount on this machine")
        assert _in_cgroup(directory)["memory_limit_bytes"] == 3 * GIB


def test_a_real_cpu_quota_is_seen() -> None:
    with real_v1_cgroup("cpu", {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}) as directory:
        if directory is None:
            import pytest

            pytest.skip("no writable v1 cpu cgroup mount on this machine")
        found = _in_cgroup(directory)
        assert (found["quota_cores"], found["cores"]) == (0.5, 1.0)
