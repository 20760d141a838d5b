"""The Triton virtualenv (var/triton-venv): nvidia-pytriton 0.7 (its `tritonserver` binary, the
Python backend and tritonclient) with numpy < 2, layered on the project's venv for torch, toto2
and the rest.

    python tests/serving/triton_venv.py [VENV]     # build or reuse; prints the venv's python

Why its own venv: PyTriton 0.7 requires numpy < 2 (the project venv has numpy 2), and its
tritonclient brings protobuf 6 (the project pins 7). Why layered: as tests/serving/kserve_venv.py,
only PyTriton and its dependencies are installed (~45 packages, ~400 MB with the 55 MB wheel),
then a .pth file appends the project venv's site-packages AFTER its own: PyTriton's numpy 1.26,
protobuf, grpcio win, and torch, toto2, safetensors... come from the project venv. torch 2.x
and the other compiled packages built against numpy 2 import under numpy 1.26, except SciPy
1.18 ("A NumPy version >=2.0.0 ... is required"; toto2 → gluonts → lightning → torchmetrics
imports it): the venv gets its own SciPy, the newest pip finds for numpy < 2. pyarrow 26 also
needs numpy 2 and is not importable there: only the plugin uses it, never the model side.

The Python-backend stub that Triton runs is linked against libpython3.X.so: `libpython_dir()`
is what the server's LD_LIBRARY_PATH needs (a Python built with --enable-shared, as pyenv's).
Idempotent: a stamp records what was installed and for which project venv; a matching stamp is
reused as is, anything else is rebuilt. Measured on 2 shared cores: ~40 s to build, ~0 s to reuse.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = ROOT / "var" / "triton-venv"
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2", "scipy")
PTH_NAME = "zz_toto_project_venv.pth"

# Run in the built venv: where each layer's packages come from.
_CHECK = """
import json, google.protobuf, numpy, pytriton, scipy, torch, toto2
print(json.dumps({"numpy": numpy.__version__, "numpy_at": numpy.__file__, "pytriton": pytriton.__file__,
                  "scipy_at": scipy.__file__, "torch_at": torch.__file__, "toto2_at": toto2.__file__,
                  "protobuf": google.protobuf.__version__}))
"""


def _spec(project_site: str) -> dict[str, object]:
    python = sys.version.split()[0]
    return {"requirements": list(REQUIREMENTS), "project_site": project_site, "python": python}


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def libpython_dir() -> str:
    """Where libpython3.X.so is (the Triton Python-backend stub links it); RuntimeError if nowhere."""
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not (Path(libdir) / library).exists():
        raise RuntimeError(f"this Python ({sys.base_prefix}) has no shared libpython ({libdir}/{library}): "
                           "Triton's Python-backend stub needs one (build Python with --enable-shared)")
    return str(libdir)


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """Build the venv unless a matching one is there; → its python. Safe to call concurrently."""
    project_site = sysconfig.get_paths()["purelib"]  # of the interpreter running this: the project venv
    spec = _spec(project_site)
    stamp = venv / ".toto-triton.json"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and json.loads(stamp.read_text()) == spec:
            return python_of(venv)
        shutil.rmtree(venv, ignore_errors=True)  # half-built or for another project venv
        _run([sys.executable, "-m", "venv", str(venv)], "creating the Triton venv")
        python = python_of(venv)
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              *spec["requirements"]], "pip install of PyTriton")  # type: ignore[misc]
        site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         "locating the Triton venv's site-packages").strip())
        (site / PTH_NAME).write_text(project_site + "\n")
        found = json.loads(_run([str(python), "-c", _CHECK], "importing PyTriton with the project's torch"))
        for name in ("numpy", "scipy"):
            if not found[f"{name}_at"].startswith(str(venv)):
                raise RuntimeError(f"the Triton venv does not get its own {name}: {found}")
        if int(found["numpy"].split(".")[0]) >= 2:
            raise RuntimeError(f"the Triton venv has numpy {found['numpy']}, PyTriton needs < 2: {found}")
        if not found["torch_at"].startswith(project_site):
            raise RuntimeError(f"the Triton venv does not reach the project venv's torch: {found}")
        stamp.write_text(json.dumps(spec))
        return python


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT_VENV))
