"""protobuf ↔ domain values. Handlers never see generated classes; this file never sees torch."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .._proto.pluginv2 import backend_pb2 as pb
from ..errors import QueryError
from ..frames import encode_frame
from ..service import DataQueryInput, QueryResult
from ..settings import DataSourceSettings, parse_settings

log = logging.getLogger(__name__)


def settings_from(
    ctx: pb.PluginContext, environ: Mapping[str, str] | None = None
) -> DataSourceSettings | QueryError:
    """Typed settings, or the QueryError every query of the request will carry."""
    ds = ctx.dataSourceInstanceSettings
    try:
        return parse_settings(
            uid=ds.uid,
            name=ds.name,
            url=ds.url,
            updated_ms=ds.lastUpdatedMS,
            json_data=ds.jsonData,
            secure=dict(ds.decryptedSecureJsonData),
            basic_auth_enabled=ds.basicAuthEnabled,
            basic_auth_user=ds.basicAuthUser,
            environ=environ,
        )
    except QueryError as exc:
        return exc


def query_inputs(request: pb.QueryDataRequest) -> list[DataQueryInput]:
    return [
        DataQueryInput(
            ref_id=q.refId,
            query_type=q.queryType,
            json=q.json,
            from_ms=q.timeRange.fromEpochMS,
            to_ms=q.timeRange.toEpochMS,
            interval_ms=float(q.intervalMS),
            max_data_points=int(q.maxDataPoints),
        )
        for q in request.queries
    ]


def error_response(error: QueryError) -> pb.DataResponse:
    return pb.DataResponse(error=error.message, status=error.status, errorSource=error.source)


def data_response(ref_id: str, result: QueryResult) -> pb.DataResponse:
    """Status is always set: Grafana reads 0 as 500 (GRAFANA_PROTOCOL §2.3)."""
    if result.error is not None:
        return error_response(result.error)
    try:
        frames = [encode_frame(f, ref_id) for f in result.frames]
    except Exception as exc:
        log.exception("frame encoding failed", extra={"kv": {"refId": ref_id}})
        return error_response(QueryError(f"could not encode the result: {exc}", 500))
    return pb.DataResponse(frames=frames, status=200, format=pb.ARROW)


def query_data_response(results: Mapping[str, QueryResult]) -> pb.QueryDataResponse:
    response = pb.QueryDataResponse()
    for ref_id, result in results.items():
        response.responses[ref_id].CopyFrom(data_response(ref_id, result))
    return response
