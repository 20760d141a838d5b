"""What CheckHealth says about an inference server: ServerReady, ModelReady, then ModelMetadata.

Each step has its own short deadline so a dead engine answers health in ~`timeout_s`, and the
message names the step that failed: "not reachable" vs "up but model not loaded" vs "ready".
All steps end by the caller's `deadline` too (Grafana's deadline for CheckHealth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from ..._proto.inference import grpc_predict_v2_pb2 as pb
from ...core.request import RequestContext
from . import contract
from .client import RemoteRunner, transport_error


@dataclass
class RemoteHealth:
    address: str
    model: str
    ready: bool
    info: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def message(self) -> str:
        where = f"remote model {self.model} at {self.address}"
        if not self.ready:
            return f"{where}: not ready: {self.error}"
        details = [f"checkpoint {self.info.get('checkpoint') or 'unknown'}"]
        if self.info.get("device"):
            details.append(f"device {self.info['device']}")
        return f"{where}: ready, " + ", ".join(details)


def model_info(meta: pb.ModelMetadataResponse) -> dict[str, Any]:
    """ModelMetadata → the model info dict the plugin shows (id, checkpoint, device, dtype, ...)."""
    props = dict(meta.properties)
    info: dict[str, Any] = {
        "id": meta.name,
        "platform": meta.platform,
        "versions": list(meta.versions),
        "checkpoint": props.pop(contract.PROP_CHECKPOINT, ""),
        "device": props.pop(contract.PROP_DEVICE, ""),
        "dtype": props.pop(contract.PROP_DTYPE, ""),
    }
    parameters = props.pop(contract.PROP_PARAMETERS, "")
    info["parameters"] = int(parameters) if parameters.isdigit() else None
    rows = props.pop(contract.PROP_MAX_ROWS, "")
    info["maxRows"] = int(rows) if rows.isdigit() else None
    in_flight = props.pop(contract.PROP_MAX_CONCURRENCY, "")
    info["maxConcurrency"] = int(in_flight) if in_flight.isdigit() and int(in_flight) > 0 else None
    info["properties"] = props
    return info


def probe(runner: RemoteRunner, ctx: RequestContext, timeout_s: float = 5.0) -> RemoteHealth:
    """ServerReady, ModelReady, ModelMetadata: each within `timeout_s`, all within the check's
    deadline (`ctx`)."""
    settings, stub, md = runner.settings, runner.stub, runner._metadata
    health = RemoteHealth(runner.address, settings.model, ready=False)

    capped = False  # the last step's budget was what was left of the check's deadline

    def step_s() -> float:
        nonlocal capped
        budget = ctx.budget(timeout_s)
        capped = budget.capped_by_request
        return max(0.001, budget.seconds)

    try:
        if not stub.ServerReady(pb.ServerReadyRequest(), timeout=step_s(), metadata=md).ready:
            health.error = "the server reports it is not ready"
            return health
        if not stub.ModelReady(
            pb.ModelReadyRequest(name=settings.model), timeout=step_s(), metadata=md
        ).ready:
            health.error = f"the server is up but model {settings.model!r} is not ready (still loading?)"
            return health
        meta = stub.ModelMetadata(
            pb.ModelMetadataRequest(name=settings.model), timeout=step_s(), metadata=md
        )
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and capped:
            health.error = (f"the inference server at {runner.address} did not answer the health "
                            "check within what was left of Grafana's deadline for it")
        else:
            health.error = transport_error(exc, runner.address, "the health check").message
        return health
    health.info = model_info(meta)
    health.ready = True
    return health
