"""Remote model runtime: PreparedBatches run on an Open Inference Protocol v2 engine.

RemoteRuntime() is the registry entry (engine/registry.py); its settings hook turns a data
source's `inferenceUrl` into ModelSettings(runtime="remote", options=...) (settings.py).

runner = RemoteRunner(RemoteSettings(url, model, token, tls=..., ca_cert=...))
BatchingForecaster(f"remote:{model}@{runner.address}", in_data_units(runner), ...)  # a BatchRunner,
                                                       # in data units (engine/toto_runner.py)
probe(runner).message   # "remote model toto at host:port: ready, checkpoint X, device cuda:0"
"""

from .client import RemoteRunner, RemoteSettings, transport_error
from .health import RemoteHealth, model_info, probe
from .runtime import RemoteRuntime

__all__ = [
    "RemoteHealth",
    "RemoteRunner",
    "RemoteRuntime",
    "RemoteSettings",
    "model_info",
    "probe",
    "transport_error",
]
