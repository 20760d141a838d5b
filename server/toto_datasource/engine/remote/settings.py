"""The data-source settings that choose the remote runtime, typed into ModelSettings.

jsonData `inferenceUrl` (empty: the model runs in-process), `inferenceModel` (default "toto"),
`inferenceTlsSkipVerify`; secure `inferenceToken`, `inferenceTlsCACert`. An admin pins them for
every data source with `[plugin.toto-forecast-datasource] inference_url = ...` (GF_PLUGIN_INFERENCE_URL,
likewise INFERENCE_MODEL, INFERENCE_TOKEN, INFERENCE_TLS_CA_CERT). The token and the CA travel as
`Secret`, so no repr, log line or message formatting ModelSettings shows them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...core.config import ProcessConfig
from ...core.errors import bad_request
from ...core.settings import ModelSettings, RawSettings, Secret, flag_setting
from .client import RemoteSettings

RUNTIME = "remote"
DEFAULT_ENGINE_MODEL = "toto"
SCHEMES = {"": False, "grpc": False, "http": False, "grpcs": True, "https": True}  # → TLS
DEFAULT_CONCURRENCY = 4  # model calls in flight per engine (replicas serve them in parallel)


def remote_model_settings(raw: RawSettings, model: ModelSettings, config: ProcessConfig) -> ModelSettings:
    """`model` unchanged when no inference URL is set; else the remote runtime's ModelSettings.
    Raises BackendError(400) naming the setting for a URL or TLS choice that cannot work."""
    data, secure = raw.json_data, raw.secure
    url = (config.inference_url or str(data.get("inferenceUrl") or "")).strip()
    if not url:
        return model
    name = (config.inference_model or str(data.get("inferenceModel") or "")).strip()
    name = name or DEFAULT_ENGINE_MODEL
    token = config.inference_token or secure.get("inferenceToken", "")
    ca_cert = config.inference_tls_ca_cert or secure.get("inferenceTlsCACert", "")
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise bad_request(f"data source setting inferenceUrl: scheme {scheme!r} is not supported; "
                          "expected host:port, grpc://host:port or grpcs://host:port (TLS)")
    try:
        parsed = RemoteSettings(url)
        address, _ = parsed.address, parsed.target  # target: several engines must be IPs of one family
    except ValueError as exc:
        raise bad_request(f"data source setting inferenceUrl: {exc}") from None
    if config.inference_tls_skip_verify or flag_setting(data, "inferenceTlsSkipVerify"):
        # grpc-python verifies every TLS peer: there is no switch to turn that off.
        raise bad_request(
            "data source setting inferenceTlsSkipVerify: gRPC cannot skip TLS certificate verification; "
            "turn it off and paste the server's CA certificate (or its self-signed certificate) into "
            "Engine CA certificate instead"
        )
    tls = SCHEMES[scheme] or bool(ca_cert)
    return ModelSettings(
        checkpoint=f"{name} at {address}",  # what loading messages and metrics name
        runtime=RUNTIME,
        options=(
            ("address", address),
            ("model", name),
            ("token", Secret(token)),
            ("tls", tls),
            ("ca_cert", Secret(ca_cert)),
        ),
    )


def remote_settings(model: ModelSettings) -> RemoteSettings:
    """ModelSettings.options → the runner's settings. Ray Serve's gRPC proxy routes by the
    `application` metadata: the Serve application is named like the model (serve_config.yaml)."""
    name = model.option("model", DEFAULT_ENGINE_MODEL)
    token, ca = model.option("token", Secret("")), model.option("ca_cert", Secret(""))
    return RemoteSettings(
        url=model.option("address", ""),
        model=name,
        token=token.reveal(),
        tls=bool(model.option("tls", False)),
        ca_cert=ca.reveal(),
        application=name,
    )
