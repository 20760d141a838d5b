"""A virtualenv for a test engine whose pins clash with the project's (KServe: protobuf < 7;
PyTriton: numpy < 2), layered on the project venv instead of installing torch again (~6 GB).

The venv installs only the engine and its dependencies, then a .pth file appends the project
venv's site-packages AFTER its own: the engine's pins win, and torch, toto2, safetensors... come
from the project venv (a .pth line only appends a path, so the project venv's own .pth files, e.g.
its editable install, are not run: toto_datasource comes from PYTHONPATH). Idempotent: a stamp
records what was installed and for which project venv; a matching stamp is reused as is, anything
else is rebuilt. A lock file makes concurrent builds (pytest-xdist, two test runs) wait for one.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path

PTH_NAME = "zz_toto_project_venv.pth"


def run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(
    venv: Path,
    engine: str,
    requirements: Sequence[str],
    check: str,
    verify: Callable[[dict[str, str], str], None],
) -> Path:
    """Build `venv` for `engine` unless a matching one is there; → its python.

    check: Python run in the built venv that prints a JSON object of versions and paths (with
    `torch_at`, which must come from the project venv); verify(found, venv) raises RuntimeError
    when the engine's own pins did not win."""
    project_site = sysconfig.get_paths()["purelib"]  # of the interpreter running this: the project venv
    spec = {"requirements": list(requirements), "project_site": project_site,
            "python": sys.version.split()[0]}
    stamp = venv / f".toto-{engine.lower()}.json"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and json.loads(stamp.read_text()) == spec:
            return python_of(venv)
        shutil.rmtree(venv, ignore_errors=True)  # half-built or for another project venv
        run([sys.executable, "-m", "venv", str(venv)], f"creating the {engine} venv")
        python = python_of(venv)
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
            f"pip install of {engine}")
        site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        f"locating the {engine} venv's site-packages").strip())
        (site / PTH_NAME).write_text(project_site + "\n")
        found = json.loads(run([str(python), "-c", check], f"importing {engine} with the project's torch"))
        if not found["torch_at"].startswith(project_site):
            raise RuntimeError(f"the {engine} venv does not reach the project venv's torch: {found}")
        verify(found, str(venv))
        stamp.write_text(json.dumps(spec))
        return python
