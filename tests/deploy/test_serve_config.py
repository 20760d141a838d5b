"""`toto-datasource serve` (the sidecar) is configured by its own environment and flags, never by
GF_PLUGIN_* (Grafana does not start it)."""

from __future__ import annotations

from toto_datasource.cli import build_parser, serve_config


def config_of(argv: list[str], environ: dict[str, str]):  # type: ignore[no-untyped-def]
    return serve_config(build_parser().parse_args(["serve", *argv]), environ)


def test_toto_environment_then_flags() -> None:
    environ = {"TOTO_MODEL": "/models/a", "TOTO_DEVICE": "cpu", "TOTO_CACHE_TTL_S": "5"}
    config = config_of(["--model", "/models/b", "--inference-url", "pool:8001"], environ)
    assert (config.model, config.device, config.inference_url, config.cache_ttl_s) == (
        "/models/b", "cpu", "pool:8001", 5.0)


def test_grafanas_plugin_variables_are_not_read() -> None:
    config = config_of([], {"GF_PLUGIN_MODEL": "/not/mine", "GF_PLUGIN_LOG_LEVEL": "debug"})
    assert (config.model, config.log_level) == ("", "info")
