"""protobuf ↔ plain values. Handlers never see generated classes; this file never sees torch."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from .._proto.pluginv2 import backend_pb2 as pb
from ..core.errors import BackendError, bad_request
from ..core.settings import RawSettings
from ..core.types import DataQueryInput, QueryResult
from ..frames import encode_frame

log = logging.getLogger(__name__)


def is_alert_request(headers: Mapping[str, str]) -> bool:
    """Grafana's alerting sets FromAlert=true; forwarded headers may carry an http_ prefix."""
    for key, value in headers.items():
        name = key.lower().removeprefix("http_")
        if name == "fromalert" and value.lower() == "true":
            return True
    return False


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{what} is not UTF-8 text") from None


def raw_settings(ctx: pb.PluginContext) -> RawSettings:
    """The data source's settings as sent, or a BackendError naming what could not be decoded."""
    ds = ctx.dataSourceInstanceSettings
    text = _text(ds.jsonData, "data source jsonData")
    try:
        json_data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise bad_request(f"data source jsonData is not valid JSON: {exc.msg}") from None
    except RecursionError:  # "[[[[..." 100,000 deep
        raise bad_request("data source jsonData is nested too deeply") from None
    if not isinstance(json_data, dict):
        raise bad_request("data source jsonData must be a JSON object")
    return RawSettings(
        uid=ds.uid,
        name=ds.name,
        url=ds.url,
        updated_ms=ds.lastUpdatedMS,
        json_data=json_data,
        secure=dict(ds.decryptedSecureJsonData),
        basic_auth_enabled=ds.basicAuthEnabled,
        basic_auth_user=ds.basicAuthUser,
        grafana_app_url=ctx.grafanaConfig.get("GF_APP_URL", ""),
    )


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


def error_response(error: BackendError) -> pb.DataResponse:
    return pb.DataResponse(error=error.message, status=error.status, errorSource=error.source)


def data_response(ref_id: str, result: QueryResult) -> pb.DataResponse:
    """Status is always set: the SDK converts a DataResponse with status 0 to 500."""
    if result.error is not None:
        return error_response(result.error)
    try:
        frames = [encode_frame(f, ref_id) for f in result.frames]
    except Exception as exc:
        log.exception("frame encoding failed", extra={"kv": {"refId": ref_id}})
        return error_response(BackendError(f"could not encode the result: {exc}", 500))
    return pb.DataResponse(frames=frames, status=200, format=pb.ARROW)


def query_data_response(results: Mapping[str, QueryResult]) -> pb.QueryDataResponse:
    response = pb.QueryDataResponse()
    for ref_id, result in results.items():
        response.responses[ref_id].CopyFrom(data_response(ref_id, result))
    return response
