"""Settings parsed once per version: a save takes effect at once, errors stay errors, secrets redacted."""

from __future__ import annotations

import json

from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.errors import BackendError
from toto_datasource.core.redact import KNOWN_SECRETS, MAX_REMEMBERED
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.plugin.settings_cache import SettingsCache
from toto_datasource.service import ForecastDataSource


class CountingDataSource(ForecastDataSource):
    def __init__(self) -> None:
        super().__init__(ModelRegistry(warmup=False))
        self.parses = 0

    def parse_settings(self, raw, environ=None):  # type: ignore[no-untyped-def]
        self.parses += 1
        return super().parse_settings(raw, environ)


def context(json_data: dict, updated_ms: int = 1, secure: dict | None = None) -> pb.PluginContext:
    settings = pb.DataSourceInstanceSettings(
        uid="ds1", name="ds", jsonData=json.dumps(json_data).encode(), lastUpdatedMS=updated_ms,
        decryptedSecureJsonData=secure or {},
    )
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=settings)


def test_same_settings_are_parsed_once_and_a_save_takes_effect_on_the_next_query() -> None:
    ds = CountingDataSource()
    cache = SettingsCache(ds)
    first = cache.get(context({"maxSeries": 40}))
    again = cache.get(context({"maxSeries": 40}))
    assert again is first and first.max_series == 40 and ds.parses == 1
    saved = cache.get(context({"maxSeries": 80}, updated_ms=2))  # the admin saved the data source
    assert saved.max_series == 80 and ds.parses == 2


def test_an_invalid_version_answers_its_400_every_time() -> None:
    cache = SettingsCache(CountingDataSource())
    for _ in range(2):
        err = cache.get(context({"defaultHorizon": "forever"}))
        assert isinstance(err, BackendError) and err.status == 400 and "defaultHorizon" in err.message


def test_a_cached_version_keeps_its_secrets_in_the_redactor() -> None:
    """The process redactor forgets its oldest secrets; one still being sent must not be among them."""
    cache = SettingsCache(CountingDataSource())
    secret = "StillInUseTok3n"
    ctx = context({"prometheusUrl": "http://prom:9090", "authType": "bearer"}, secure={"bearerToken": secret})
    cache.get(ctx)
    KNOWN_SECRETS.remember(f"filler-secret-{i}" for i in range(MAX_REMEMBERED + 1))  # all it keeps, and one
    assert secret in KNOWN_SECRETS(f"token {secret}")  # forgotten by the bounded registry
    cache.get(ctx)  # the next query with those settings, answered from the cache
    assert secret not in KNOWN_SECRETS(f"token {secret}")


def test_the_cache_is_bounded() -> None:
    ds = CountingDataSource()
    cache = SettingsCache(ds, size=4)
    for i in range(10):
        cache.get(context({"maxSeries": 10 + i}, updated_ms=i))
    cache.get(context({"maxSeries": 10}, updated_ms=0))  # the oldest was dropped: parsed again
    assert ds.parses == 11
