"""Which data sources run on the remote runtime, from their settings (no engine needed)."""

from __future__ import annotations

import pytest
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.settings import RawSettings, Secret
from toto_datasource.engine.remote.settings import remote_settings
from toto_datasource.service import parse_data_source_settings


def parse(json_data: dict, secure: dict | None = None, environ: dict | None = None):  # type: ignore[no-untyped-def]
    config = ProcessConfig.from_environment(environ or {})
    return parse_data_source_settings(RawSettings(json_data=json_data, secure=secure or {}), config)


def test_no_inference_url_runs_in_process() -> None:
    assert parse({}).model.runtime == "local"
    assert parse({"inferenceUrl": "  ", "inferenceModel": "x"}).model.runtime == "local"


def test_inference_url_chooses_the_remote_runtime_and_hides_the_token() -> None:
    model = parse({"inferenceUrl": "grpc://serve.ml:9000", "inferenceModel": "toto-22m"},
                  {"inferenceToken": "s3cret"}).model
    assert model.runtime == "remote" and model.checkpoint == "toto-22m at serve.ml:9000"
    assert model.option("token") == Secret("s3cret")
    assert "s3cret" not in repr(model) and "s3cret" not in str(model)
    remote = remote_settings(model)
    assert (remote.url, remote.model, remote.token) == ("serve.ml:9000", "toto-22m", "s3cret")
    assert not remote.tls
    assert remote.application == "toto-22m"  # Ray Serve routes by the application name
    assert "s3cret" not in repr(remote)


def test_tls_by_scheme_or_by_a_ca_certificate() -> None:
    assert remote_settings(parse({"inferenceUrl": "grpcs://e:443"}).model).tls
    with_ca = parse({"inferenceUrl": "e:9000"}, {"inferenceTlsCACert": "-----BEGIN CERTIFICATE-----"}).model
    assert remote_settings(with_ca).tls and remote_settings(with_ca).ca_cert.startswith("-----BEGIN")


def test_admin_override_pins_the_engine_for_every_data_source() -> None:
    env = {"GF_PLUGIN_INFERENCE_URL": "engine.internal:9000", "GF_PLUGIN_INFERENCE_TOKEN": "admin-token"}
    model = parse({"inferenceUrl": "ignored:1"}, {"inferenceToken": "user"}, env).model
    assert model.option("address") == "engine.internal:9000"
    assert model.option("token") == Secret("admin-token")


@pytest.mark.parametrize(("json_data", "words"), [
    ({"inferenceUrl": "grpcs://e:443", "inferenceTlsSkipVerify": True},
     ["inferenceTlsSkipVerify", "CA certificate"]),
    ({"inferenceUrl": "ftp://e:21"}, ["inferenceUrl", "scheme"]),
    ({"inferenceUrl": "engine-without-port"}, ["inferenceUrl", "port"]),
    ({"inferenceUrl": "a.internal:9000,b.internal:9000"}, ["inferenceUrl", "IP addresses", "DNS name"]),
])
def test_settings_that_cannot_work_are_400s_naming_the_field(json_data: dict, words: list[str]) -> None:
    with pytest.raises(BackendError) as err:
        parse(json_data)
    assert err.value.status == 400 and all(w in err.value.message for w in words)
