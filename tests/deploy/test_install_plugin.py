"""`toto-datasource install-plugin` (plugin_install.py) and the launchers it writes, run as a user
runs them; the Go harness (tests/conformance) starts the installed launchers as Grafana does."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_ID = "toto-forecast-datasource"


def install(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server")}
    return subprocess.run([sys.executable, "-m", "toto_datasource", "install-plugin", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_installs_a_folder_whose_launchers_exec_this_interpreter(tmp_path: Path) -> None:
    done = install(str(tmp_path))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / PLUGIN_ID
    plugin = json.loads((folder / "plugin.json").read_text())
    assert plugin["id"] == PLUGIN_ID and plugin["info"]["version"][0].isdigit()
    for arch in ("amd64", "arm64"):
        launcher = folder / f"gpx_toto_forecast_linux_{arch}"
        assert launcher.stat().st_mode & stat.S_IXUSR
        assert f"PYTHON='{sys.executable}'" in launcher.read_text()
    assert (folder / "provisioning" / "datasources" / "toto-forecast.yaml").is_file()
    assert "allow_loading_unsigned_plugins = toto-forecast-datasource" in done.stdout


def test_upgrades_in_place_and_leaves_nothing_behind(tmp_path: Path) -> None:
    assert install(str(tmp_path)).returncode == 0
    stale = tmp_path / PLUGIN_ID / "left-over-from-an-old-version.js"
    stale.write_text("old")
    again = install(str(tmp_path))
    assert again.returncode == 0 and again.stdout.startswith("upgraded ")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [PLUGIN_ID]  # no staging folder left


def test_refuses_to_overwrite_a_folder_that_is_not_this_plugin(tmp_path: Path) -> None:
    other = tmp_path / PLUGIN_ID
    other.mkdir()
    (other / "plugin.json").write_text('{"id": "someone-else-datasource"}')
    (other / "data.txt").write_text("keep me")
    refused = install(str(tmp_path))
    assert refused.returncode == 2
    assert "is not the toto-forecast-datasource plugin" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert (other / "data.txt").read_text() == "keep me"
    (tmp_path / "file-dir").mkdir()
    (tmp_path / "file-dir" / PLUGIN_ID).write_text("a file")
    assert install(str(tmp_path / "file-dir")).returncode == 2


def test_zip_follows_grafanas_convention_with_a_portable_launcher(tmp_path: Path) -> None:
    done = install(str(tmp_path), "--zip")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.glob("*.zip"))
    assert len(names) == 2 and all(n.startswith(f"{PLUGIN_ID}-") for n in names)
    assert names[0].endswith(".linux_amd64.zip") and names[1].endswith(".linux_arm64.zip")
    with zipfile.ZipFile(tmp_path / names[0]) as archive:
        assert {n.split("/", 1)[0] for n in archive.namelist()} == {PLUGIN_ID}
        info = archive.getinfo(f"{PLUGIN_ID}/gpx_toto_forecast_linux_amd64")
        assert (info.external_attr >> 16) & 0o777 == 0o755
        launcher = archive.read(info).decode()
    assert launcher.startswith("#!/bin/sh\n")
    assert sys.executable not in launcher and "@PYTHON@" not in launcher
    assert "preinstall = toto-forecast-datasource@" in done.stdout and "server_address = " in done.stdout


def _sidecar_launcher(tmp_path: Path, *args: str) -> Path:
    assert install(str(tmp_path), "--sidecar", *args).returncode == 0
    return tmp_path / PLUGIN_ID / "gpx_toto_forecast_linux_amd64"


def _launch(launcher: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The launcher with Grafana's minimal environment (no PATH, no HOME). After the handshake
    line it waits for Grafana to kill it: the line is read, then the launcher killed."""
    proc = subprocess.Popen(["/bin/sh", str(launcher)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if line:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, line, err)


def test_sidecar_launcher_hands_grafana_the_address_grafana_ini_names(tmp_path: Path) -> None:
    with socket.socket() as listening, socket.socket() as other:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        other.bind(("127.0.0.1", 0))
        other.listen()
        written = f"127.0.0.1:{listening.getsockname()[1]}"
        launcher = _sidecar_launcher(tmp_path, "--address", written)
        assert (launcher.parent / "server_address.txt").read_text().strip() == written
        assert _launch(launcher, {}).stdout == f"1|2|tcp|{written}|grpc\n"
        pinned = f"127.0.0.1:{other.getsockname()[1]}"  # grafana.ini's server_address wins
        assert _launch(launcher, {"GF_PLUGIN_SERVER_ADDRESS": pinned}).stdout == f"1|2|tcp|{pinned}|grpc\n"


def test_sidecar_launcher_refuses_what_is_not_an_address(tmp_path: Path) -> None:
    launcher = _sidecar_launcher(tmp_path)
    for bad in ("a b:1", "host", "x;reboot:1", "host:"):
        done = _launch(launcher, {"GF_PLUGIN_SERVER_ADDRESS": bad})
        assert done.returncode == 1 and done.stdout == "" and "is not host:port" in done.stderr
