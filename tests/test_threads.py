"""The intra-op thread governor (engine/threads.py): the cores other processes leave free."""

from __future__ import annotations

import sys

import torch
from toto_datasource.engine.threads import ContentionSample, ThreadGovernor, governed, proc_stat_reader


class FakeProc:
    """A contention source as a sequence of samples; each `advance` is one interval of `seconds`
    in which others took `others_cores` (this process's own use never counts)."""

    def __init__(self, cores: int) -> None:
        self.cores = cores
        self.sample = ContentionSample(0.0, 0.0)

    def advance(self, seconds: float, others_cores: float, own_cores: float) -> None:
        s = self.sample
        self.sample = ContentionSample(s.wall_s + seconds, s.others_cpu_s + seconds * others_cores)

    def __call__(self) -> ContentionSample:
        return self.sample


def test_every_core_while_the_machine_is_otherwise_idle() -> None:
    proc = FakeProc(4)
    governor = ThreadGovernor(4, proc)
    proc.advance(1.0, others_cores=0.1, own_cores=3.5)
    assert governor.choose() == 4


def test_a_busy_neighbour_takes_its_cores_away_and_gives_them_back() -> None:
    proc = FakeProc(2)
    governor = ThreadGovernor(2, proc)
    proc.advance(1.0, others_cores=1.0, own_cores=1.0)  # Grafana (or a load generator) on one core
    assert governor.choose() == 1
    proc.advance(1.0, others_cores=2.0, own_cores=0.0)  # never fewer than one thread
    assert governor.choose() == 1
    proc.advance(1.0, others_cores=0.0, own_cores=1.0)
    assert governor.choose() == 2


def test_too_short_an_interval_keeps_the_last_choice() -> None:
    proc = FakeProc(2)
    governor = ThreadGovernor(2, proc)
    proc.advance(1.0, others_cores=1.0, own_cores=0.5)
    assert governor.choose() == 1
    proc.advance(0.01, others_cores=0.0, own_cores=2.0)  # 10 ms: one jiffy of noise
    assert governor.choose() == 1


def test_no_proc_keeps_every_core() -> None:
    governor = ThreadGovernor(3, lambda: None)
    assert governor.choose() == 3


def test_this_machine_can_be_read() -> None:
    """Linux has /proc/stat; elsewhere (macOS) there is no sample and the governor keeps every core."""
    read = proc_stat_reader()
    sample = read()
    if not sys.platform.startswith("linux"):
        assert sample is None and ThreadGovernor(2, read).choose() == 2
        return
    assert sample is not None and sample.wall_s > 0 and sample.others_cpu_s >= 0


def test_governed_runner_sets_torch_threads_before_each_call() -> None:
    proc = FakeProc(2)
    governor = ThreadGovernor(2, proc)
    seen: list[int] = []
    run = governed(lambda batch: seen.append(torch.get_num_threads()) or batch, governor)
    before = torch.get_num_threads()
    try:
        proc.advance(1.0, others_cores=1.0, own_cores=1.0)
        assert run("batch") == "batch"
        proc.advance(1.0, others_cores=0.0, own_cores=1.0)
        run("batch")
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(before)
