"""Playing Grafana against a plugin process: requests with planted secrets, and the checks every
answer must pass (no 500, every refId, ascending time, unique series, no secret)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.frames import decode_frame

# Planted in every settings value the tests send; none may appear in anything the plugin says.
SECRETS = {
    "bearerToken": "PlantedBearer7f3a",
    "basicAuthPassword": "PlantedBasicPw9c1",
    "httpHeaderValue1": "PlantedHeaderK4y",
}
URL_PASSWORD = "PlantedUrlPw55"
URL_TOKEN = "PlantedQueryTok88"
ALL_SECRETS = (*SECRETS.values(), URL_PASSWORD, URL_TOKEN)


def planted_url(base: str) -> str:
    host = base.removeprefix("http://")
    return f"http://planted:{URL_PASSWORD}@{host}/?token={URL_TOKEN}"


def context(
    json_data: Mapping[str, object] | bytes | None = None,
    secure: Mapping[str, str] | None = None,
    uid: str = "fuzz",
    updated_ms: int = 1,
) -> pb.PluginContext:
    raw = json_data if isinstance(json_data, bytes) else json.dumps(json_data or {}).encode()
    settings = pb.DataSourceInstanceSettings(
        uid=uid, name="fuzz", jsonData=raw, lastUpdatedMS=updated_ms,
        decryptedSecureJsonData=dict(SECRETS if secure is None else secure),
    )
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=settings)


def query(
    ref_id: str, body: Mapping[str, object] | bytes, from_ms: int, to_ms: int,
    interval_ms: int = 60_000, max_data_points: int = 1000, query_type: str = "",
) -> pb.DataQuery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return pb.DataQuery(
        refId=ref_id, json=raw, intervalMS=interval_ms, maxDataPoints=max_data_points, queryType=query_type,
        timeRange=pb.TimeRange(fromEpochMS=from_ms, toEpochMS=to_ms),
    )


@dataclass
class Violations:
    """Every broken promise, with the input that broke it (the test reports them all at once)."""

    items: list[str] = field(default_factory=list)

    def add(self, what: str, where: object) -> None:
        text = f"{what} <- {where}"
        if text not in self.items:
            self.items.append(text[:600])

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self) -> str:
        return f"{len(self.items)} violations:\n" + "\n".join(self.items[:60])


def leaked(text: str | bytes, secrets: Iterable[str] = ALL_SECRETS) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [s for s in secrets if s in text]


def check_response(
    request: pb.QueryDataRequest, response: pb.QueryDataResponse, found: Violations, where: object
) -> None:
    wanted = {q.refId for q in request.queries}
    missing = wanted - set(response.responses)
    if missing:
        found.add(f"refIds not answered: {sorted(missing)}", where)
    for ref_id, r in response.responses.items():
        if r.status in (0, 500) or r.status >= 600:
            found.add(f"{ref_id}: status {r.status}: {r.error[:200]}", where)
        if r.error and leaked(r.error):
            found.add(f"{ref_id}: secret in error {leaked(r.error)}: {r.error[:200]}", where)
        check_frames(ref_id, r, found, where)


def check_frames(ref_id: str, r: pb.DataResponse, found: Violations, where: object) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for raw in r.frames:
        frame = decode_frame(raw)
        if not frame.fields:
            continue
        time_field = frame.fields[0]
        if pa.types.is_timestamp(time_field.values.type) and len(time_field.values) > 1:
            ts = time_field.values.cast("int64").to_numpy(zero_copy_only=False)
            if not np.all(ts[1:] > ts[:-1]):  # not np.diff: it wraps around like the timestamps
                found.add(f"{ref_id}: timestamps not ascending (first {ts[0]}, last {ts[-1]})", where)
        for f in frame.fields[1:]:
            key = (f.name, tuple(sorted((f.labels or {}).items())))
            if key in seen:
                found.add(f"{ref_id}: series {key} repeated across frames", where)
            seen.add(key)
        for notice in frame.meta.notices:
            if leaked(notice.text):
                found.add(f"{ref_id}: secret in a notice", where)
        if leaked(frame.meta.executed_query_string):
            found.add(f"{ref_id}: secret in executedQueryString", where)
