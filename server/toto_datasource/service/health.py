"""CheckHealth: the model (loaded? a test forecast) and every configured source's upstream.

Each part reports in `details` under its own name; the message says what to fix first.

Deadlines: Grafana calls CheckHealth with a deadline (the "Save & test" button, provisioning)
that may be shorter than `timeoutSeconds`. Every part's probe gets that deadline less the one
margin rule of core/request.py (`answer_deadline`), so an upstream that never answers ends its
own probe with a message naming it ("Prometheus at ... did not answer within 1.6s (what was left of Grafana's
deadline ...)"), and the thread running it ends too. Whatever a probe cannot bound (a DNS lookup
inside the socket library) is cut off by `check_health_within`: the parts run on a daemon
thread and the answer goes out at the deadline, naming the part still running. Measured with a
never-answering Prometheus, timeoutSeconds 20 and a 2 s gRPC deadline: ERROR after ~1.6 s
(before: DEADLINE_EXCEEDED at 2 s, the probe thread stuck for 20 s).
"""

from __future__ import annotations

import threading
from typing import Any

from ..core.errors import BackendError
from ..core.registry import Registry
from ..core.request import RequestContext, answer_deadline
from ..core.settings import DataSourceSettings
from ..core.types import HealthResult
from ..engine.registry import ModelRegistry, ModelState
from ..sources.base import SourceProvider
from .instances import DataSourceInstance


class _Progress:
    """What has been found so far and which part is running (read by the cut-off)."""

    def __init__(self) -> None:
        self.details: dict[str, Any] = {}
        self.running = "the health check"
        self.lock = threading.Lock()

    def start(self, part: str) -> None:
        with self.lock:
            self.running = part


def check_health_within(
    registry: ModelRegistry,
    sources: Registry[SourceProvider],
    instance: DataSourceInstance,
    ctx: RequestContext,
) -> HealthResult:
    """`check_health`, answered by the check's deadline whatever a probe does: past it the
    answer is ERROR naming the part that is still running."""
    left = ctx.left()
    if left is None:
        return check_health(registry, sources, instance, ctx)
    probes = ctx.with_deadline(answer_deadline(left, ctx.clock))
    progress = _Progress()
    box: list[HealthResult | BaseException] = []

    def run() -> None:
        try:
            box.append(check_health(registry, sources, instance, probes, progress))
        except BaseException as exc:  # handed to the caller's thread, which logs it
            box.append(exc)

    worker = threading.Thread(target=run, name="check-health", daemon=True)
    worker.start()
    worker.join(ctx.left())
    if box:
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]
    with progress.lock:
        running = progress.running
        details = {k: dict(v) if isinstance(v, dict) else v for k, v in progress.details.items()}
    return HealthResult(
        False,
        f"{running} did not answer within {left:.1f}s (what was left of Grafana's deadline "
        "for the health check)",
        details,
    )


def check_health(
    registry: ModelRegistry,
    sources: Registry[SourceProvider],
    instance: DataSourceInstance,
    ctx: RequestContext,
    progress: _Progress | None = None,
) -> HealthResult:
    """The model's state and every configured source's upstream, each in `details`; the message is
    the first problem found (model first), or every part's OK message joined. Probes end by the
    check's deadline where they can."""
    settings = instance.settings
    if isinstance(settings, BackendError):
        return HealthResult(False, f"invalid data source settings: {settings}")
    progress = progress or _Progress()
    details = progress.details
    ok, message = _model_health(registry, settings, details, ctx, progress)
    problems = [] if ok else [message]
    messages = [message] if ok else []
    for name, _ in settings.parts:
        provider = sources.get(name)
        try:
            source = instance.source(name)
            progress.start(f"{provider.title} at {source.url}" if source.url else provider.title)
            upstream = source.check(ctx)
        except BackendError as exc:  # e.g. a CA certificate that does not parse
            details[name] = {"ok": False, "message": exc.message}
            problems.append(f"{provider.title} settings: {exc.message}")
            continue
        if upstream is None:
            continue
        details[name] = {"ok": upstream.ok, "message": upstream.message, "version": upstream.version}
        (messages if upstream.ok else problems).append(upstream.message)
    if problems:
        return HealthResult(False, problems[0], details)
    return HealthResult(True, ". ".join(messages), details)


def _model_health(registry: ModelRegistry, settings: DataSourceSettings, details: dict[str, Any],
                  ctx: RequestContext, progress: _Progress) -> tuple[bool, str]:
    handle = registry.ensure(settings.model)
    details["model"] = {"checkpoint": settings.model.checkpoint, "backend": handle.runtime.name,
                        "state": str(handle.state), **handle.info}
    if handle.state == ModelState.LOADING:
        return False, f"loading the Toto model {settings.model.checkpoint}; test again in a few seconds"
    loaded = handle.loaded
    if handle.state == ModelState.FAILED or loaded is None:  # failed, or let go just now
        return False, handle.error.message if handle.error else "the model failed to load"
    remote = handle.info.get("remote")
    progress.start(f"the inference server at {remote}" if remote
                   else f"the model's test forecast ({handle.runtime.name})")
    probe = handle.runtime.probe(loaded, settings.model, ctx)
    details["model"].update(probe.details)
    return probe.ok, probe.message


def model_list(registry: ModelRegistry) -> list[dict[str, Any]]:
    """Every model this process has loaded or tried to, plus the always-ready baselines."""
    out: list[dict[str, Any]] = []
    for s in registry.handles():
        if s.runtime.instant:
            continue
        out.append({"checkpoint": s.settings.checkpoint, "device": s.settings.device,
                    "dtype": s.settings.dtype, "backend": s.runtime.name, "state": str(s.state),
                    "loaded": s.state == ModelState.READY, "error": s.error.message if s.error else "",
                    **s.info})
    for runtime in registry.runtimes.values():
        if runtime.instant:
            out.append({"checkpoint": runtime.name, "state": "ready", "loaded": True, "baseline": True})
    return out
