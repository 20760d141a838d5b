"""gRPC servicers: one per pluginv2 capability, plus go-plugin's controller.

Each method makes the call's RequestContext (deadline, cancellation, CPU slot, caller), finds
the data source's instance for the settings version sent, converts protobuf to plain values
(wire.py), calls the service, converts back, and never lets an exception escape as a dead
process or a missing refId.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import grpc

from .. import metrics
from .._proto.goplugin import grpc_controller_pb2 as ctl
from .._proto.goplugin import grpc_controller_pb2_grpc as ctl_grpc
from .._proto.pluginv2 import backend_pb2 as pb
from .._proto.pluginv2 import backend_pb2_grpc as pb_grpc
from ..core.cpu import NO_SLOT, CpuSlots
from ..core.errors import BackendError
from ..core.request import RequestContext, answer_deadline
from ..core.types import QueryResult
from ..service import ForecastDataSource, call_resource
from ..service.instances import DataSourceInstance
from . import wire

log = logging.getLogger(__name__)


class Edge:
    """What every servicer shares: the data source, the CPU slots, and how a call becomes a
    RequestContext and an instance."""

    def __init__(self, ds: ForecastDataSource, cpu: CpuSlots | None = None) -> None:
        self.ds = ds
        self.cpu = cpu or CpuSlots(ds.config.cpu_slot_count)

    def context(self, grpc_ctx: grpc.ServicerContext, plugin: pb.PluginContext,
                headers: Mapping[str, str], *, cpu: bool, resource_call: bool = False) -> RequestContext:
        """The call's request context; cancelling the gRPC call cancels its queued forecasts."""
        remaining = grpc_ctx.time_remaining()
        if remaining is not None and remaining > 1e6:  # grpcio's "no deadline" can be a huge number
            remaining = None
        ctx = RequestContext(deadline=answer_deadline(remaining), caller=wire.caller(plugin, headers),
                             cpu=self.cpu.slot() if cpu else NO_SLOT, resource_call=resource_call)
        grpc_ctx.add_callback(ctx.cancellation.cancel)
        return ctx

    def instance(self, plugin: pb.PluginContext) -> DataSourceInstance:
        return self.ds.instances.get(wire.data_source_key(plugin), wire.settings_version(plugin),
                                     lambda: wire.raw_settings(plugin))


class DataServicer(pb_grpc.DataServicer):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def QueryData(self, request: pb.QueryDataRequest, context: grpc.ServicerContext) -> pb.QueryDataResponse:
        queries = wire.query_inputs(request)
        try:
            ctx = self.edge.context(context, request.pluginContext, request.headers, cpu=True)
            with ctx.cpu.held():  # Python work holds a CPU slot; every wait inside gives it back
                instance = self.edge.instance(request.pluginContext)
                results = self.edge.ds.query_data(instance, queries, ctx)
        except Exception as exc:  # last line of defence: every refId still gets an answer
            log.exception("QueryData failed")
            error = BackendError(f"internal error: {type(exc).__name__}: {exc}", 500)
            results = {q.ref_id: QueryResult(error=error) for q in queries}
        return wire.query_data_response(results)


class DiagnosticsServicer(pb_grpc.DiagnosticsServicer):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def CheckHealth(
        self, request: pb.CheckHealthRequest, context: grpc.ServicerContext
    ) -> pb.CheckHealthResponse:
        try:
            # Grafana's deadline (Save & test) may be shorter than timeoutSeconds: every probe is
            # bounded by it and the answer is ERROR naming the slow upstream, never DEADLINE_EXCEEDED.
            ctx = self.edge.context(context, request.pluginContext, request.headers, cpu=False)
            result = self.edge.ds.check_health(self.edge.instance(request.pluginContext), ctx)
        except Exception as exc:
            log.exception("CheckHealth failed")
            return pb.CheckHealthResponse(
                status=pb.CheckHealthResponse.ERROR, message=f"health check failed: {exc}"
            )
        status = pb.CheckHealthResponse.OK if result.ok else pb.CheckHealthResponse.ERROR
        details = json.dumps(result.details, default=str).encode()
        return pb.CheckHealthResponse(status=status, message=result.message, jsonDetails=details)

    def CollectMetrics(
        self, request: pb.CollectMetricsRequest, context: grpc.ServicerContext
    ) -> pb.CollectMetricsResponse:
        payload = pb.CollectMetricsResponse.Payload(prometheus=metrics.exposition())
        return pb.CollectMetricsResponse(metrics=payload)


class ResourceServicer(pb_grpc.ResourceServicer):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def CallResource(self, request: pb.CallResourceRequest, context: grpc.ServicerContext):  # type: ignore[override]
        try:
            params = parse_qs(urlsplit(request.url).query)
            headers = wire.resource_headers(request.headers)
            ctx = self.edge.context(context, request.pluginContext, headers, cpu=True, resource_call=True)
            with ctx.cpu.held():
                instance = self.edge.instance(request.pluginContext)
                response = call_resource(self.edge.ds, instance, request.method.upper() or "GET",
                                         request.path, params, request.body, ctx)
            code, body, content_type = response.status, response.encoded(), response.content_type
        except Exception as exc:
            log.exception("CallResource failed")
            code, body, content_type = (
                500, json.dumps({"error": f"internal error: {exc}"}).encode(), "application/json"
            )
        headers_out = {"Content-Type": pb.StringList(values=[content_type])}
        yield pb.CallResourceResponse(code=code, headers=headers_out, body=body)


class ControllerServicer(ctl_grpc.GRPCControllerServicer):
    """go-plugin's Shutdown: the host calls it, then waits 2 s, then kills the process."""

    def __init__(self, stop: threading.Event, honour: bool = True) -> None:
        self.stop = stop
        self.honour = honour

    def Shutdown(self, request: ctl.Empty, context: grpc.ServicerContext) -> ctl.Empty:
        if self.honour:
            log.info("shutdown requested by the host")
            self.stop.set()
        else:
            log.info("ignoring Shutdown: this server runs on its own and serves every Grafana that connects")
        return ctl.Empty()
