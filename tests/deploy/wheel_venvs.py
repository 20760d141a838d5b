"""The built wheel in fresh virtualenvs outside the repository, as a user installs it.

    python tests/deploy/wheel_venvs.py DIR     # prints TOTO_WHEEL=…, TOTO_BASE_VENV=…, TOTO_FULL_VENV=…

- The wheel: what `make dist` builds (grafana-plugin/stage.sh, then `python -m build`), rebuilt
  when a tracked file under server/, grafana-plugin/ or pyproject.toml changed (var/wheel/).
- base: `pip install` of the wheel alone into a new venv (its dependencies from the registry;
  no torch): what `pip install toto-forecast-datasource` gives.
- full: the wheel with the toto extra, layered on the project's venv for torch and toto2
  (tests/serving/layered_venv.py's way) instead of downloading ~6 GB again: the wheel without its
  dependencies, then a .pth that appends the project venv's site-packages.

DIR is the caller's temporary directory outside the repository (run.sh removes it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / "var" / "wheel"


def run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    """A child without PYTHONPATH: what runs in the venvs comes from the wheel, never the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd or Path("/"), env=env)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise SystemExit(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def sources_hash() -> str:
    tracked = ["server", "grafana-plugin", "pyproject.toml", "README.md"]
    files = run(["git", "ls-files", *tracked], "git ls-files", ROOT).split()
    digest = hashlib.sha256()
    for name in sorted(files):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    module_js = ROOT / "grafana-plugin" / "frontend" / "dist" / "module.js"
    if module_js.is_file():
        digest.update(module_js.read_bytes())
    return digest.hexdigest()[:16]


def build_wheel() -> Path:
    stamp = WHEEL_DIR / f".sources-{sources_hash()}"
    wheels = sorted(WHEEL_DIR.glob("*.whl"))
    if stamp.exists() and len(wheels) == 1:
        return wheels[0]
    run(["sh", str(ROOT / "grafana-plugin" / "stage.sh")], "staging the plugin files")
    for old in WHEEL_DIR.glob("*"):
        old.unlink()
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would package stale build/lib files
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(WHEEL_DIR), str(ROOT)],
        "building the wheel")
    Path(f"{WHEEL_DIR}/.sources-{sources_hash()}").touch()
    return sorted(WHEEL_DIR.glob("*.whl"))[0]


def venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", str(path)], f"creating {path}")
    return path / "bin" / "python"


def main(out: Path) -> None:
    wheel = build_wheel()
    base = venv(out / "base")
    run([str(base), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        "pip install (base)")
    full = venv(out / "full")
    run([str(full), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(wheel)],
        "pip install (full, layered)")
    site = run([str(full), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], "site").strip()
    Path(site, "zz_toto_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = "import toto_datasource, toto2; print(toto_datasource.__file__)"
    where = run([str(full), "-c", check], "importing toto2 in the full venv").strip()
    if not where.startswith(str(out)):
        raise SystemExit(f"the full venv imports toto_datasource from {where}, not from the wheel")
    print(f"TOTO_WHEEL={wheel}\nTOTO_BASE_VENV={out / 'base'}\nTOTO_FULL_VENV={out / 'full'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
