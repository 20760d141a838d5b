"""Which local Toto runtime this installation has: the real one when the `toto` extra is
installed (toto2 and torch), else one whose every use is the 400 that names both fixes.

Why by name: the base install (no torch, no toto2) serves the baselines and remote inference
servers, and import-linter checks that nothing on the query path imports torch or toto2, even
indirectly. engine/local_toto.py is imported only here, by name, and only when toto2 is there.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..core.config import ProcessConfig
from ..core.errors import BackendError, bad_request
from ..core.request import RequestContext
from ..core.settings import ModelSettings, RawSettings
from .runtimes import LoadedModel, ModelRuntime, Probe

LOCAL_TOTO_MODULE = "toto_datasource.engine.local_toto"
TOTO_NOT_INSTALLED = (
    "model toto runs Toto 2.0, which this installation does not include: install it beside the plugin "
    "(pip install 'toto-forecast-datasource[toto]'), or set inferenceUrl (grafana.ini: inference_url) "
    "to an inference server that runs it; model statistical and seasonal-naive work without either"
)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class TotoNotInstalled:
    """The local runtime of an installation without the `toto` extra: never an ImportError,
    never a 500."""

    name = "local"
    instant = False
    query_model = None

    def model_settings(self, raw: RawSettings, settings: ModelSettings, config: ProcessConfig
                       ) -> ModelSettings:
        return settings

    def settings_problem(self, settings: ModelSettings) -> BackendError | None:
        return bad_request(TOTO_NOT_INSTALLED)

    def load(self, settings: ModelSettings, config: ProcessConfig, warmup: bool) -> LoadedModel:
        raise bad_request(TOTO_NOT_INSTALLED)

    def probe(self, loaded: LoadedModel, settings: ModelSettings, ctx: RequestContext) -> Probe:
        return Probe(False, TOTO_NOT_INSTALLED)


def local_toto_runtime() -> ModelRuntime:
    if not (installed("toto2") and installed("torch")):
        return TotoNotInstalled()
    return importlib.import_module(LOCAL_TOTO_MODULE).LocalTotoRuntime()  # type: ignore[no-any-return]
