"""Remote model backend: PreparedBatches run on an Open Inference Protocol v2 engine.

RemoteBackend() is the registry entry (engine/registry.py); its settings hook turns a data
source's `inferenceUrl` into ModelSettings(backend="remote", options=...) (settings.py).

runner = RemoteRunner(RemoteSettings(url, model, token, tls=..., ca_cert=...))
BatchingForecaster(f"remote:{runner.address}/{model}", runner, ...)   # the runner is a BatchRunner
probe(runner).message   # "remote model toto at host:port: ready, checkpoint X, device cuda:0"
"""

from .backend import RemoteBackend
from .client import RemoteRunner, RemoteSettings, transport_error
from .health import RemoteHealth, model_info, probe

__all__ = [
    "RemoteBackend", "RemoteHealth", "RemoteRunner", "RemoteSettings",
    "model_info", "probe", "transport_error",
]
