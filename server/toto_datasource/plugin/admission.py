"""What every RPC passes on its way in and out: admission by kind, and redaction of what leaves.

Why: grpcio's sync server runs each RPC on a pool thread for its whole life. With 80
queries stuck on a never-answering upstream, all 64 threads were taken, grpc.health "plugin"
took 18 s and Shutdown never ran (Grafana SIGKILLs after 2 s). So data calls (QueryData,
CallResource) may hold at most `pool - reserve` threads and CheckHealth (which may test an
upstream) `health_limit`; the rest is always free for grpc.health, CollectMetrics and Shutdown,
which return at once. A data call over its limit is answered at once, in the protocol: every
refId gets a 503 "busy" error (Grafana shows it on the panel) instead of the call queueing behind
the stuck ones.

On the way out, every query error, CheckHealth message and details, and resource body goes
through `redact.redact` (the secrets of every parsed settings value plus secret-shaped text).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from .._proto.pluginv2 import backend_pb2 as pb
from ..core.redact import KNOWN_SECRETS, redact

log = logging.getLogger(__name__)

DATA_METHODS = ("/pluginv2.Data/QueryData", "/pluginv2.Resource/CallResource")
HEALTH_METHOD = "/pluginv2.Diagnostics/CheckHealth"


@dataclass
class Limits:
    data: int  # concurrent QueryData + CallResource calls
    health: int  # concurrent CheckHealth calls


class _Gate:
    """A counter that admits or refuses at once (never blocks: a blocked caller holds a thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def busy_query_response(request: pb.QueryDataRequest, in_flight: int) -> pb.QueryDataResponse:
    message = (
        f"the forecast plugin is busy ({in_flight} requests in flight, the most it takes at once); "
        "try again in a few seconds"
    )
    response = pb.QueryDataResponse()
    for q in request.queries:
        response.responses[q.refId].CopyFrom(pb.DataResponse(error=message, status=503, errorSource="plugin"))
    return response


def redact_query_response(response: pb.QueryDataResponse) -> pb.QueryDataResponse:
    for data in response.responses.values():
        if data.error:
            data.error = redact(data.error)
    return response


def redact_health(response: pb.CheckHealthResponse) -> pb.CheckHealthResponse:
    response.message = redact(response.message)
    if response.jsonDetails:
        try:
            response.jsonDetails = redact(response.jsonDetails.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            response.jsonDetails = b"{}"
    return response


def redact_resource(response: pb.CallResourceResponse) -> pb.CallResourceResponse:
    content_type = " ".join(v for vals in response.headers.values() for v in vals.values).lower()
    if "json" in content_type or "text" in content_type:
        response.body = KNOWN_SECRETS.redactor.bytes(response.body)
    return response


class AdmissionInterceptor(grpc.ServerInterceptor):
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.data = _Gate(limits.data)
        self.health = _Gate(limits.health)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        method = details.method
        if handler is None:
            return None
        if method == DATA_METHODS[0] and handler.unary_unary:
            return _unary(handler, self._query_data(handler.unary_unary))
        if method == DATA_METHODS[1] and handler.unary_stream:
            return _stream(handler, self._call_resource(handler.unary_stream))
        if method == HEALTH_METHOD and handler.unary_unary:
            return _unary(handler, self._check_health(handler.unary_unary))
        return handler

    def _query_data(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        def behaviour(request: pb.QueryDataRequest, context: grpc.ServicerContext) -> Any:
            if not self.data.enter():
                log.warning("QueryData refused: busy", extra={"kv": {"inFlight": self.data.in_flight}})
                return busy_query_response(request, self.data.in_flight)
            try:
                return redact_query_response(inner(request, context))
            finally:
                self.data.leave()

        return behaviour

    def _call_resource(self, inner: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def behaviour(request: pb.CallResourceRequest, context: grpc.ServicerContext) -> Iterator[Any]:
            if not self.data.enter():
                body = b'{"error": "the forecast plugin is busy; try again in a few seconds"}'
                headers = {"Content-Type": pb.StringList(values=["application/json"])}
                yield pb.CallResourceResponse(code=503, headers=headers, body=body)
                return
            try:
                for response in inner(request, context):
                    yield redact_resource(response)
            finally:
                self.data.leave()

        return behaviour

    def _check_health(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        def behaviour(request: pb.CheckHealthRequest, context: grpc.ServicerContext) -> Any:
            if not self.health.enter():
                return pb.CheckHealthResponse(
                    status=pb.CheckHealthResponse.ERROR,
                    message="the forecast plugin is busy with other health checks; test again shortly",
                )
            try:
                return redact_health(inner(request, context))
            finally:
                self.health.leave()

        return behaviour


def _unary(handler: Any, behaviour: Callable[..., Any]) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _stream(handler: Any, behaviour: Callable[..., Iterator[Any]]) -> Any:
    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
