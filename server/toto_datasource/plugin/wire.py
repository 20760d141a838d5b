"""protobuf ↔ plain values. Handlers never see generated classes; this file never sees torch."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from .._proto.pluginv2 import backend_pb2 as pb
from ..core.errors import BackendError, bad_request
from ..core.identity import Caller
from ..core.settings import RawSettings
from ..core.types import DataQueryInput, QueryResult
from ..frames import encode_frame
from ..service.instances import DataSourceKey

log = logging.getLogger(__name__)


ID_TOKEN_HEADER = "x-grafana-id"  # the SDK's GrafanaUserSignInTokenHeaderName, lower-cased


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by case-insensitive name; QueryData and CheckHealth forward HTTP headers
    with an http_ prefix, CallResource without."""
    for key, value in headers.items():
        if key.lower().removeprefix("http_") == name:
            return value
    return ""


def resource_headers(headers: Mapping[str, pb.StringList]) -> dict[str, str]:
    """CallResource's multi-valued headers as single values (the first of each)."""
    return {key: values.values[0] for key, values in headers.items() if values.values}


def is_alert_request(headers: Mapping[str, str]) -> bool:
    """Grafana's alerting sets FromAlert=true (a user's own request can set it too: it chooses
    frame shapes, never a permission)."""
    return header(headers, "fromalert").lower() == "true"


def caller(ctx: pb.PluginContext, headers: Mapping[str, str]) -> Caller:
    """Who the request says it is for, unverified (core/identity.py)."""
    return Caller(
        id_token=header(headers, ID_TOKEN_HEADER).strip(),
        org_id=ctx.orgId,
        namespace=ctx.namespace,
        app_url=ctx.grafanaConfig.get("GF_APP_URL", ""),
        login=ctx.user.login if ctx.HasField("user") else "",
        from_alert=is_alert_request(headers),
    )


def data_source_key(ctx: pb.PluginContext) -> DataSourceKey:
    return DataSourceKey(ctx.orgId, ctx.dataSourceInstanceSettings.uid)


def settings_version(ctx: pb.PluginContext) -> bytes:
    """What changes when the data source's settings do: the settings as sent (lastUpdatedMS, the
    JSON, the secrets) and the GF_APP_URL they are read against."""
    settings = ctx.dataSourceInstanceSettings.SerializeToString(deterministic=True)
    return settings + b"\0" + ctx.grafanaConfig.get("GF_APP_URL", "").encode()


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
