"""`toto-datasource install-plugin`: write the Grafana plugin folder (or its zip) from the package.

The wheel carries the built frontend and the plugin's files as package data (`plugin_assets/`,
staged by grafana-plugin/stage.sh); from a checkout they are read from grafana-plugin/ directly.
Three outputs:

- a folder for this host: launchers that exec the interpreter running this command (Grafana
  >= 12.4 gives a plugin no PATH, so the path is absolute);
- `--sidecar`: a folder whose launcher only hands Grafana the address of a plugin server running
  on its own (`toto-datasource serve`), /bin/sh and no Python (a Grafana container);
- `--zip`: the same sidecar folder as Grafana's archive `<id>-<version>.<os>_<arch>.zip`, for
  `[plugins] preinstall` or the Helm chart's `plugins:` list; no interpreter path in it.

An existing folder is upgraded in place (written beside it, then swapped), and a folder that is
not this plugin is never overwritten.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PLUGIN_ID = "toto-forecast-datasource"
EXECUTABLE = "gpx_toto_forecast"
ARCHES = ("amd64", "arm64")
DEFAULT_PLUGINS_DIR = "/var/lib/grafana/plugins"
DEFAULT_SERVER_ADDRESS = "127.0.0.1:50051"
PACKAGE_DIR = Path(__file__).resolve().parent


class InstallError(Exception):
    """What went wrong, worded for the person who ran the command."""


@dataclass(frozen=True)
class Assets:
    """Where the plugin's files are: the package's plugin_assets/ or a checkout's grafana-plugin/."""

    plugin_json: Path  # with %VERSION% and %TODAY% to fill in
    module_js: Path | None  # None: a checkout whose frontend was not built
    img: Path
    provisioning: Path
    readme: Path
    host_launcher: Path
    sidecar_launcher: Path

    @classmethod
    def find(cls) -> Assets:
        staged = PACKAGE_DIR / "plugin_assets"
        if (staged / "plugin.json").is_file():
            return cls._at(staged, staged / "module.js", staged / "launcher")
        checkout = PACKAGE_DIR.parents[1] / "grafana-plugin"
        if (checkout / "plugin.json").is_file():
            return cls._at(checkout, checkout / "frontend" / "dist" / "module.js", checkout / "launcher")
        raise InstallError(f"this installation has no plugin files ({staged} is missing): "
                           "install the package from its wheel or sdist (`make dist` builds them)")

    @classmethod
    def _at(cls, base: Path, module_js: Path, launchers: Path) -> Assets:
        return cls(base / "plugin.json", module_js if module_js.is_file() else None, base / "img",
                   base / "provisioning", base / "README.md", launchers / "host.sh.in",
                   launchers / "sidecar.sh")


def package_version() -> str:
    try:
        return metadata.version(PLUGIN_ID)
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        for line in (PACKAGE_DIR.parents[1] / "pyproject.toml").read_text().splitlines():
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
        raise InstallError("no version: install the package (pip install .)") from None


def host_launcher(assets: Assets, python: str) -> str:
    quoted = python.replace("'", "'\\''")
    return assets.host_launcher.read_text().replace("@PYTHON@", quoted)


def write_folder(target: Path, assets: Assets, launcher: str, version: str,
                 server_address: str | None = None) -> None:
    """The plugin folder's files under `target` (which must not exist yet)."""
    target.mkdir(parents=True)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    text = assets.plugin_json.read_text().replace("%VERSION%", version).replace("%TODAY%", today)
    (target / "plugin.json").write_text(text)
    shutil.copytree(assets.img, target / "img")
    shutil.copytree(assets.provisioning, target / "provisioning")
    shutil.copy2(assets.readme, target / "README.md")
    if assets.module_js is not None:
        shutil.copy2(assets.module_js, target / "module.js")
        source_map = assets.module_js.with_name("module.js.map")
        if source_map.is_file():
            shutil.copy2(source_map, target / "module.js.map")
    for arch in ARCHES:
        path = target / f"{EXECUTABLE}_linux_{arch}"
        path.write_text(launcher)
        path.chmod(0o755)
    if server_address:
        (target / "server_address.txt").write_text(server_address + "\n")


def is_this_plugin(folder: Path) -> bool:
    try:
        return json.loads((folder / "plugin.json").read_text()).get("id") == PLUGIN_ID
    except (OSError, ValueError, AttributeError):
        return False


def install_folder(plugins_dir: Path, launcher: str, version: str, server_address: str | None = None
                   ) -> tuple[Path, bool]:
    """Write or upgrade plugins_dir/<id>/; → (the folder, True when it replaced an older one)."""
    target = plugins_dir / PLUGIN_ID
    upgrade = target.exists()
    if upgrade and not (target.is_dir() and is_this_plugin(target)):
        raise InstallError(f"{target} exists and is not the {PLUGIN_ID} plugin (no plugin.json with that "
                           "id): nothing was changed; move it away or choose another plugins directory")
    assets = Assets.find()
    try:
        plugins_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_ID}-new-", dir=plugins_dir))
    except OSError as exc:
        raise InstallError(f"cannot write to {plugins_dir}: {exc.strerror or exc}") from None
    try:
        write_folder(stage / PLUGIN_ID, assets, launcher, version, server_address)
        if not upgrade:
            os.rename(stage / PLUGIN_ID, target)
        else:  # swap: the old folder goes aside, the new one in, then the old one away
            os.rename(target, stage / "old")
            try:
                os.rename(stage / PLUGIN_ID, target)
            except OSError:
                os.rename(stage / "old", target)
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target, upgrade


def zip_name(version: str, arch: str) -> str:
    return f"{PLUGIN_ID}-{version}.linux_{arch}.zip"


def write_zips(out_dir: Path, version: str, server_address: str | None = None) -> list[Path]:
    """Grafana's archive convention: one top folder named <id>, launchers executable."""
    assets = Assets.find()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / PLUGIN_ID
        write_folder(folder, assets, assets.sidecar_launcher.read_text(), version, server_address)
        for arch in ARCHES:
            path = out_dir / zip_name(version, arch)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.rglob("*")):
                    name = f"{PLUGIN_ID}/{file.relative_to(folder)}"
                    if file.is_dir():
                        continue
                    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                    info.external_attr = ((0o755 if os.access(file, os.X_OK) else 0o644) | 0o100000) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, file.read_bytes())
            written.append(path)
    return written


def grafana_ini(sidecar: bool, server_address: str | None) -> str:
    lines = ["[plugins]", f"allow_loading_unsigned_plugins = {PLUGIN_ID}", "",
             f"[plugin.{PLUGIN_ID}]"]
    if sidecar:
        lines += [f"server_address = {server_address or DEFAULT_SERVER_ADDRESS}   "
                  "; where `toto-datasource serve --address` listens"]
    else:
        lines += ["; model = /opt/toto/Toto-2.0-22m   ; a Hugging Face id or a local checkpoint directory",
                  "; inference_url = gpu-pool:8001     ; or send the model calls to an inference server"]
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("install-plugin", help="write the Grafana plugin folder (or --zip its archive)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", nargs="?", default=None,
                   help=f"Grafana's plugins directory (default {DEFAULT_PLUGINS_DIR}; with --zip: here)")
    p.add_argument("--sidecar", action="store_true",
                   help="a launcher that connects Grafana to `toto-datasource serve` running on its own")
    p.add_argument("--zip", action="store_true",
                   help="write the portable archives <id>-<version>.linux_<arch>.zip (sidecar launcher)")
    p.add_argument("--address", default=None,
                   help="the sidecar server's host:port written into the folder (default: grafana.ini's "
                        f"server_address, else {DEFAULT_SERVER_ADDRESS})")
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter the host launcher execs (default: the one running this command)")
    return p


def run(args: argparse.Namespace) -> int:
    version = package_version()
    try:
        if args.zip:
            for path in write_zips(Path(args.directory or "."), version, args.address):
                print(f"wrote {path}")
            print(f"\nWith [plugins] preinstall = {PLUGIN_ID}@{version}@<URL of the zip> (or the Helm "
                  "chart's plugins: list), and in grafana.ini:\n")
            print(grafana_ini(True, args.address))
            return 0
        plugins_dir = Path(args.directory or os.environ.get("GF_PATHS_PLUGINS") or DEFAULT_PLUGINS_DIR)
        python = os.path.abspath(args.python)
        if not args.sidecar and not os.access(python, os.X_OK):
            raise InstallError(f"--python {python} is not an executable interpreter")
        assets = Assets.find()
        launcher = assets.sidecar_launcher.read_text() if args.sidecar else host_launcher(assets, python)
        address = args.address if args.sidecar else None
        folder, upgraded = install_folder(plugins_dir, launcher, version, address)
    except InstallError as exc:
        print(f"install-plugin: {exc}", file=sys.stderr)
        return 2
    print(f"{'upgraded' if upgraded else 'installed'} {folder} (version {version}"
          f"{', sidecar launcher' if args.sidecar else f', launcher runs {python}'})")
    if Assets.find().module_js is None:
        print("warning: no module.js (the frontend was not built): the query and config editors "
              "will be missing", file=sys.stderr)
    print("\nStill needed in grafana.ini (then restart Grafana):\n")
    print(grafana_ini(args.sidecar, args.address))
    return 0
