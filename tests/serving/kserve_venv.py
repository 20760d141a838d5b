"""The KServe virtualenv (var/kserve-venv): KServe 0.21 with its protobuf < 7, layered on the
project's venv for torch, toto2 and the rest.

    python tests/serving/kserve_venv.py [VENV]     # build or reuse; prints the venv's python

Why its own venv: KServe 0.21's Python server needs protobuf < 7, the project pins protobuf 7.
Why layered: installing torch again costs ~6 GB and minutes. The venv installs only KServe and
its dependencies (~70 packages, ~440 MB; numpy pinned to the project venv's version, for the
torch it shares), then a .pth file appends the project venv's site-packages AFTER its own: KServe's
protobuf, grpcio, numpy win, and torch, toto2, safetensors... come from the project venv (a
.pth line only appends a path, so the project venv's own .pth files, e.g. its editable install,
are not run: toto_datasource comes from PYTHONPATH). Idempotent: a stamp records what was
installed and for which project venv; a matching stamp is reused as is, anything else is rebuilt.
Measured on 2 shared cores: ~2 min to build (pip ~1 min 45 s), ~0 s to reuse.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = ROOT / "var" / "kserve-venv"
REQUIREMENTS = ("kserve==0.21.*", "protobuf<7")
PTH_NAME = "zz_toto_project_venv.pth"

# Run in the built venv: where each layer's packages come from.
_CHECK = """
import json, google.protobuf, grpc, kserve, numpy, torch, toto2
print(json.dumps({"protobuf": google.protobuf.__version__, "protobuf_at": google.protobuf.__file__,
                  "kserve": kserve.__file__, "numpy": numpy.__version__, "torch_at": torch.__file__,
                  "toto2_at": toto2.__file__}))
"""


def _spec(project_site: str) -> dict[str, object]:
    return {
        "requirements": [*REQUIREMENTS, f"numpy=={metadata.version('numpy')}"],
        "project_site": project_site,
        "python": sys.version.split()[0],
    }


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """Build the venv unless a matching one is there; → its python. Safe to call concurrently."""
    project_site = sysconfig.get_paths()["purelib"]  # of the interpreter running this: the project venv
    spec = _spec(project_site)
    stamp = venv / ".toto-kserve.json"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and json.loads(stamp.read_text()) == spec:
            return python_of(venv)
        shutil.rmtree(venv, ignore_errors=True)  # half-built or for another project venv
        _run([sys.executable, "-m", "venv", str(venv)], "creating the KServe venv")
        python = python_of(venv)
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              *spec["requirements"]], "pip install of KServe")  # type: ignore[misc]
        site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         "locating the KServe venv's site-packages").strip())
        (site / PTH_NAME).write_text(project_site + "\n")
        found = json.loads(_run([str(python), "-c", _CHECK], "importing KServe with the project's torch"))
        if int(found["protobuf"].split(".")[0]) >= 7 or not found["protobuf_at"].startswith(str(venv)):
            raise RuntimeError(f"the KServe venv does not get its own protobuf < 7: {found}")
        if not found["torch_at"].startswith(project_site):
            raise RuntimeError(f"the KServe venv does not reach the project venv's torch: {found}")
        stamp.write_text(json.dumps(spec))
        return python


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT_VENV))
