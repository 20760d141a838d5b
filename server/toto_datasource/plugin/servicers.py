"""gRPC servicers: one per pluginv2 capability, plus go-plugin's controller.

Each method converts protobuf to domain values (wire.py), calls the data source, converts
back, and never lets an exception escape as a dead process or a missing refId.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import parse_qs, urlsplit

import grpc

from .. import metrics
from .._proto.goplugin import grpc_controller_pb2 as ctl
from .._proto.goplugin import grpc_controller_pb2_grpc as ctl_grpc
from .._proto.pluginv2 import backend_pb2 as pb
from .._proto.pluginv2 import backend_pb2_grpc as pb_grpc
from ..core.cancel import cancel_scope
from ..core.cpu import cpu_slot
from ..core.errors import BackendError
from ..core.types import QueryResult
from ..service import ForecastDataSource, call_resource
from . import wire
from .settings_cache import SettingsCache

log = logging.getLogger(__name__)
DEADLINE_MARGIN_S = 1.0


def _deadline(context: grpc.ServicerContext) -> float | None:
    """When our answers must be ready: the caller's deadline less a margin for encoding and sending
    them, so a slow query becomes its own 504 instead of the whole call's DEADLINE_EXCEEDED."""
    remaining = context.time_remaining()
    # grpcio reports "no deadline" as None or as an enormous number of seconds.
    if remaining is None or remaining > 1e6:
        return None
    return time.monotonic() + remaining - min(DEADLINE_MARGIN_S, 0.1 * remaining)


class DataServicer(pb_grpc.DataServicer):
    def __init__(self, ds: ForecastDataSource, settings: SettingsCache | None = None) -> None:
        self.ds = ds
        self.settings = settings or SettingsCache(ds)

    def QueryData(self, request: pb.QueryDataRequest, context: grpc.ServicerContext) -> pb.QueryDataResponse:
        with cpu_slot():  # Python work holds a CPU slot; every wait inside gives it back
            return self._query_data(request, context)

    def _query_data(self, request: pb.QueryDataRequest, context: grpc.ServicerContext
                    ) -> pb.QueryDataResponse:
        queries = wire.query_inputs(request)
        try:
            settings = self.settings.get(request.pluginContext)
            with cancel_scope() as scope:  # a cancelled or timed-out call drops its queued forecasts
                context.add_callback(scope.cancel)
                results = self.ds.query_data(
                    settings, queries, for_alert=wire.is_alert_request(request.headers),
                    deadline=_deadline(context),
                )
        except Exception as exc:  # last line of defence: every refId still gets an answer
            log.exception("QueryData failed")
            error = BackendError(f"internal error: {type(exc).__name__}: {exc}", 500)
            results = {q.ref_id: QueryResult(error=error) for q in queries}
        return wire.query_data_response(results)


class DiagnosticsServicer(pb_grpc.DiagnosticsServicer):
    def __init__(self, ds: ForecastDataSource, settings: SettingsCache | None = None) -> None:
        self.ds = ds
        self.settings = settings or SettingsCache(ds)

    def CheckHealth(
        self, request: pb.CheckHealthRequest, context: grpc.ServicerContext
    ) -> pb.CheckHealthResponse:
        try:
            # Grafana's deadline (Save & test) may be shorter than timeoutSeconds: every probe is
            # bounded by it and the answer is ERROR naming the slow upstream, never DEADLINE_EXCEEDED.
            result = self.ds.check_health(self.settings.get(request.pluginContext),
                                          deadline=_deadline(context))
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
    def __init__(self, ds: ForecastDataSource, settings: SettingsCache | None = None) -> None:
        self.ds = ds
        self.settings = settings or SettingsCache(ds)

    def CallResource(self, request: pb.CallResourceRequest, context: grpc.ServicerContext):  # type: ignore[override]
        try:
            params = parse_qs(urlsplit(request.url).query)
            settings = self.settings.get(request.pluginContext)
            response = call_resource(self.ds, settings, request.method.upper() or "GET", request.path, params,
                                     request.body)
            code, body, content_type = response.status, response.encoded(), response.content_type
        except Exception as exc:
            log.exception("CallResource failed")
            code, body, content_type = (
                500, json.dumps({"error": f"internal error: {exc}"}).encode(), "application/json"
            )
        headers = {"Content-Type": pb.StringList(values=[content_type])}
        yield pb.CallResourceResponse(code=code, headers=headers, body=body)


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
            log.info("ignoring Shutdown: standalone server started by hand")
        return ctl.Empty()
