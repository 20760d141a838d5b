"""The Triton virtualenv (var/triton-venv): nvidia-pytriton 0.7 (its `tritonserver` binary, the
Python backend and tritonclient) with numpy < 2, layered on the project's venv for torch, toto2
and the rest.

    python tests/serving/triton_venv.py [VENV]     # build or reuse; prints the venv's python

Why its own venv: PyTriton 0.7 requires numpy < 2 (the project venv has numpy 2), and its
tritonclient brings protobuf 6 (the project pins 7). Layered on the project venv as KServe's is
(tests/serving/layered_venv.py): only PyTriton and its dependencies (~45 packages, ~400 MB with
the 55 MB wheel); PyTriton's numpy 1.26, protobuf, grpcio win. torch 2.x
and the other compiled packages built against numpy 2 import under numpy 1.26, except SciPy
1.18 ("A NumPy version >=2.0.0 ... is required"; toto2 → gluonts → lightning → torchmetrics
imports it): the venv gets its own SciPy, the newest pip finds for numpy < 2. pyarrow 26 also
needs numpy 2 and is not importable there: only the plugin uses it, never the model side.

The Python-backend stub that Triton runs is linked against libpython3.X.so: `libpython_dir()`
is what the server's LD_LIBRARY_PATH needs (a Python built with --enable-shared, as pyenv's).
Measured on 2 shared cores: ~40 s to build, ~0 s to reuse.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

if __package__:
    from .layered_venv import ensure as ensure_layered
else:  # run as a script: python tests/serving/triton_venv.py
    from layered_venv import ensure as ensure_layered

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = ROOT / "var" / "triton-venv"
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2", "scipy")

# Run in the built venv: where each layer's packages come from.
_CHECK = """
import json, google.protobuf, numpy, pytriton, scipy, torch, toto2
print(json.dumps({"numpy": numpy.__version__, "numpy_at": numpy.__file__, "pytriton": pytriton.__file__,
                  "scipy_at": scipy.__file__, "torch_at": torch.__file__, "toto2_at": toto2.__file__,
                  "protobuf": google.protobuf.__version__}))
"""


def libpython_dir() -> str:
    """Where libpython3.X.so is (the Triton Python-backend stub links it); RuntimeError if nowhere."""
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not (Path(libdir) / library).exists():
        raise RuntimeError(f"this Python ({sys.base_prefix}) has no shared libpython ({libdir}/{library}): "
                           "Triton's Python-backend stub needs one (build Python with --enable-shared)")
    return str(libdir)


def _verify(found: dict[str, str], venv: str) -> None:
    for name in ("numpy", "scipy"):
        if not found[f"{name}_at"].startswith(venv):
            raise RuntimeError(f"the Triton venv does not get its own {name}: {found}")
    if int(found["numpy"].split(".")[0]) >= 2:
        raise RuntimeError(f"the Triton venv has numpy {found['numpy']}, PyTriton needs < 2: {found}")


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """Build the venv unless a matching one is there; → its python. Safe to call concurrently."""
    return ensure_layered(venv, "Triton", REQUIREMENTS, _CHECK, _verify)



if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT_VENV))
