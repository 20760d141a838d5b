"""torch.compile of Toto's transformer behind a small, fixed set of shape buckets.

Why buckets: a compiled graph is specialised to one input shape; Toto's batches vary in rows and
length with every request, and each new shape costs a fresh compile (27–34 s for 22m on the 2-core
CPU, issue 16). So a batch is padded up to a bucket — rows to the next of `ROW_BUCKETS` (zero rows,
fully masked, dropped afterwards: rows are independent), the sequence (context + horizon patches)
to the next of `PATCH_BUCKETS` by left-padding the context with masked zeros (exact for Toto) —
and only bucket shapes are ever compiled. Measured gain once compiled: 2.1–2.4× at batch 1,
1.5× at batch 32 (22m, 1e-7 from eager).

Why in the background: compiling before serving would delay start-up by minutes. A bucket is queued
once batches have needed it `COMPILE_AFTER_CALLS` times, a single daemon thread compiles queued
buckets one at a time, and each bucket switches from eager to compiled once its compile returned.
Why not on first sight, and why the thread runs at the lowest CPU priority (nice 19): under a
mixed 200-client load every new row count and length is a new bucket, and 24 compiles of ~30 s
of CPU each at normal priority took half of the 2 cores for minutes — one-series queries idled at
0.75 s p50 / 3.5 s p99 instead of 0.027 / 0.038 s with compilation off (bench/load_mixed.py).
A shape seen once or twice is not worth 30 s of CPU; one that keeps coming is.

Why opt-in (TOTO_COMPILE=1), even so: dynamo and inductor compile in Python, holding the GIL that
Toto's eager forward (hundreds of Python-level module calls per batch) and the request threads
need, so lowering the thread's priority does not protect serving. Measured with the same 200-client
mix, compilation on vs off: 14.9 vs 74.6 model rows/s, one-series idle p50 0.36 vs 0.023 s. The
folded eager model already reaches 58 % (batch 1) and 106 % (batch 32) of the CPU's measured fp32
peak for 22m (bench/model_speed.py), where compiling adds 74 % at batch 1 and nothing at batch 32:
worth turning on for a dedicated model server (a Serve replica, serving/) that has steady shapes
and CPU to spare, not by default for the plugin process beside Grafana.
While a compile is running, ready buckets still run compiled only if the compile lock is free —
dynamo's caches are not meant to be read while another thread writes them — otherwise eager.
A bucket whose compile raises is marked failed and stays eager; nothing else changes.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

ROW_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
# Total patches (context + horizon): ~4 per octave, so padding wastes at most ~25 %.
PATCH_BUCKETS: tuple[int, ...] = (4, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 144,
                                  160, 192, 224, 256)
MAX_COMPILED_BUCKETS = 24  # each compile costs ~30 s of CPU; beyond this, shapes stay eager
COMPILE_AFTER_CALLS = 3  # a bucket is compiled once batches have needed it this often
COMPILE_NICE = 19  # the compile thread's CPU priority (Linux: per thread)


def compile_enabled(default: bool = False) -> bool:
    """TOTO_COMPILE=1 turns compilation on; off by default (see the module doc)."""
    value = os.environ.get("TOTO_COMPILE")
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True, order=True)
class Bucket:
    rows: int
    patches: int  # context + horizon patches seen by the transformer

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.patches}"


def pick_bucket(rows: int, context_patches: int, horizon_patches: int,
                row_buckets: tuple[int, ...] = ROW_BUCKETS,
                patch_buckets: tuple[int, ...] = PATCH_BUCKETS) -> Bucket | None:
    """The smallest bucket holding this batch, None when it exceeds every bucket."""
    total = context_patches + horizon_patches
    r = next((b for b in row_buckets if b >= rows), None)
    p = next((b for b in patch_buckets if b >= total), None)
    return None if r is None or p is None else Bucket(r, p)


def default_compiler(module: nn.Module) -> Callable[..., Any]:
    return torch.compile(module, dynamic=False, fullgraph=False)


class BucketedTransformer(nn.Module):
    """Drop-in for `model.transformer`: bucket shapes run compiled once ready, all else eager."""

    def __init__(self, eager: nn.Module, d_model: int,
                 compiler: Callable[[nn.Module], Callable[..., Any]] = default_compiler) -> None:
        super().__init__()
        self.eager = eager
        self.d_model = d_model
        self._compiler = compiler
        self._compiled: Callable[..., Any] | None = None
        self._lock = threading.Lock()  # held while dynamo compiles
        self._states: dict[Bucket, str] = {}
        self._seconds: dict[Bucket, float] = {}
        self._errors: dict[Bucket, str] = {}
        self._seen: dict[Bucket, int] = {}
        self._queue: queue.Queue[Bucket | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.compiled_calls = 0
        self.eager_calls = 0

    # -- dispatch (inference thread) ------------------------------------------------------
    def forward(self, state: torch.Tensor, time_ids: torch.Tensor | None = None,
                group_ids: torch.Tensor | None = None, kv_cache: Any = None, kv_read_len: int | None = None,
                has_missing_values: bool = True) -> torch.Tensor:
        bucket = self._bucket_of(state, group_ids)
        if (bucket is not None and time_ids is None and kv_cache is None and has_missing_values
                and self._states.get(bucket) == "ready" and self._lock.acquire(blocking=False)):
            try:
                # Never compile on the inference thread: a shape whose guards do not match
                # (it would recompile for ~30 s) raises instead, and its bucket goes eager.
                with torch.compiler.set_stance("fail_on_recompile"):
                    out = self._compiled(state, group_ids=group_ids, has_missing_values=True)
                self.compiled_calls += 1
                return out
            except Exception as exc:
                self._states[bucket] = "failed"
                self._errors[bucket] = f"at run time: {type(exc).__name__}: {str(exc)[:200]}"
                log.warning("compiled bucket %s failed at run time, serving it eagerly: %s",
                            bucket.name, self._errors[bucket])
            finally:
                self._lock.release()
        self.eager_calls += 1
        return self.eager(state, time_ids=time_ids, group_ids=group_ids, kv_cache=kv_cache,
                          kv_read_len=kv_read_len, has_missing_values=has_missing_values)

    def _bucket_of(self, state: torch.Tensor, group_ids: torch.Tensor | None) -> Bucket | None:
        if state.dim() != 4 or state.shape[1] != 1 or state.dtype != torch.float32 or group_ids is None:
            return None
        return Bucket(int(state.shape[0]), int(state.shape[2]))

    def is_ready(self, bucket: Bucket) -> bool:
        return self._states.get(bucket) == "ready"

    # -- compilation -------------------------------------------------------------------------
    def request(self, bucket: Bucket) -> None:
        """Count a batch that needed this bucket; queue it for background compilation on the
        COMPILE_AFTER_CALLS-th (once; capped at MAX_COMPILED_BUCKETS)."""
        if bucket in self._states or self._closed or len(self._states) >= MAX_COMPILED_BUCKETS:
            return
        self._seen[bucket] = seen = self._seen.get(bucket, 0) + 1
        if seen < COMPILE_AFTER_CALLS:
            return
        self._states[bucket] = "pending"
        self._queue.put(bucket)
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="toto-compile", daemon=True)
            self._thread.start()

    def compile_now(self, bucket: Bucket) -> str:
        """Compile one bucket in the calling thread (tests, bench); returns its state."""
        self._states[bucket] = "pending"
        self._compile(bucket)
        return self._states[bucket]

    def _worker(self) -> None:
        _lower_priority()
        while True:
            bucket = self._queue.get()
            if bucket is None:
                return
            self._compile(bucket)

    def _compile(self, bucket: Bucket) -> None:
        device = next(self.eager.parameters()).device
        started = time.perf_counter()
        with self._lock:
            self._states[bucket] = "compiling"
            try:
                if self._compiled is None:
                    _raise_recompile_limit()
                    self._compiled = self._compiler(self.eager)
                # Inference tensors, as forecast() makes them: dynamo guards on the dispatch keys.
                with torch.inference_mode():
                    state = torch.zeros(bucket.rows, 1, bucket.patches, self.d_model, device=device)
                    group_ids = torch.zeros(bucket.rows, 1, bucket.patches, dtype=torch.long, device=device)
                    group_ids[..., : bucket.patches // 2] = -1  # example values; shapes are compiled
                    self._compiled(state, group_ids=group_ids, has_missing_values=True)
            except Exception as exc:  # any compiler failure: this bucket stays eager
                self._states[bucket] = "failed"
                first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
                self._errors[bucket] = f"{type(exc).__name__}: {first_line}"
                log.warning("torch.compile of bucket %s failed, serving it eagerly: %s",
                            bucket.name, self._errors[bucket])
                return
            finally:
                self._seconds[bucket] = time.perf_counter() - started
        self._states[bucket] = "ready"
        log.info("compiled Toto bucket %s in %.1f s", bucket.name, self._seconds[bucket])

    def close(self, timeout: float | None = None, drain: bool = False) -> None:
        """Accept no more buckets and join the thread: after the compile it is running (default),
        or after compiling everything already queued (`drain`, for tests and the bench)."""
        self._closed = True
        while not drain:
            try:
                dropped = self._queue.get_nowait()
            except queue.Empty:
                break
            if dropped is not None:
                self._states.pop(dropped, None)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def describe(self) -> dict[str, Any]:
        """Per-bucket state for health details: {'1x72': {'state': 'ready', 'seconds': 31.2}, ...}."""
        out: dict[str, Any] = {}
        for bucket in sorted(self._states):
            entry: dict[str, Any] = {"state": self._states[bucket]}
            if bucket in self._seconds:
                entry["seconds"] = round(self._seconds[bucket], 1)
            if bucket in self._errors:
                entry["error"] = self._errors[bucket]
            out[bucket.name] = entry
        return out


def _lower_priority() -> None:
    """Give this thread the lowest CPU priority. On Linux a thread's nice value is its own, so the
    serving threads keep theirs; elsewhere this would renice the process, so it is skipped."""
    if os.uname().sysname != "Linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPILE_NICE)
    except OSError as exc:  # not permitted in some sandboxes: compile at normal priority
        log.info("could not lower the compile thread's priority: %s", exc)


def _raise_recompile_limit() -> None:
    """Every bucket is one more specialisation of the same code: allow all of them."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), MAX_COMPILED_BUCKETS + 8))
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1  # one compile worker: the CPU is shared with serving


def install(model: nn.Module, compiler: Callable[[nn.Module], Callable[..., Any]] = default_compiler
            ) -> BucketedTransformer:
    """Put a BucketedTransformer in place of model.transformer (idempotent)."""
    if isinstance(model.transformer, BucketedTransformer):
        return model.transformer
    bucketed = BucketedTransformer(model.transformer, model.config.d_model, compiler)
    model.transformer = bucketed
    return bucketed
