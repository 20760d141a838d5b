"""CheckHealth: the model (loaded? a test forecast) and every configured source's upstream.

Each part reports in `details` under its own name; the message says what to fix first.
"""

from __future__ import annotations

from typing import Any

from ..backend.errors import BackendError
from ..backend.registry import Registry
from ..backend.settings import DataSourceSettings
from ..backend.types import HealthResult
from ..engine.registry import ModelRegistry, SlotState
from ..sources.base import SourceProvider
from .instances import InstanceManager


def check_health(
    registry: ModelRegistry,
    sources: Registry[SourceProvider],
    instances: InstanceManager,
    settings: DataSourceSettings | BackendError,
) -> HealthResult:
    """The model's state and every configured source's upstream, each in `details`; the message is
    the first problem found (model first), or every part's OK message joined."""
    if isinstance(settings, BackendError):
        return HealthResult(False, f"invalid data source settings: {settings}")
    details: dict[str, Any] = {}
    ok, message = _model_health(registry, settings, details)
    problems = [] if ok else [message]
    messages = [message] if ok else []
    instance = instances.get(settings)
    for name, _ in settings.parts:
        provider = sources.get(name)
        try:
            upstream = instance.source(name).check()
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


def _model_health(registry: ModelRegistry, settings: DataSourceSettings,
                  details: dict[str, Any]) -> tuple[bool, str]:
    slot = registry.ensure(settings.model)
    details["model"] = {"checkpoint": settings.model.checkpoint, "backend": slot.backend.name,
                        "state": str(slot.state), **slot.info}
    if slot.state == SlotState.LOADING:
        return False, f"loading the Toto model {settings.model.checkpoint}; test again in a few seconds"
    if slot.state == SlotState.FAILED or slot.loaded is None:
        return False, slot.error.message if slot.error else "the model failed to load"
    probe = slot.backend.probe(slot.loaded, settings.model)
    details["model"].update(probe.details)
    return probe.ok, probe.message


def model_list(registry: ModelRegistry) -> list[dict[str, Any]]:
    """Every model this process has loaded or tried to, plus the always-ready baselines."""
    out: list[dict[str, Any]] = []
    for s in registry.slots():
        if s.backend.instant:
            continue
        out.append({"checkpoint": s.settings.checkpoint, "device": s.settings.device,
                    "dtype": s.settings.dtype, "backend": s.backend.name, "state": str(s.state),
                    "loaded": s.state == SlotState.READY, "error": s.error.message if s.error else "",
                    **s.info})
    for backend in registry.backends.values():
        if backend.instant:
            out.append({"checkpoint": backend.name, "state": "ready", "loaded": True, "baseline": True})
    return out
