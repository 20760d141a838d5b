"""Run a real Prometheus (Debian package) for tests: install, backfill, start, wait, stop.

Facts this relies on (see /work/shared/ECOSYSTEM_NOTES.md): blocks must be backfilled before the
server starts, `--max-block-duration=720h` keeps weeks of history in a couple of blocks, and the
binary is started directly so that terminating our PID stops the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_DEADLINE_S = 30.0
INSTALL_CMD = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "-o DPkg::Lock::Timeout=300 --no-install-recommends prometheus openssl"
)


class PrometheusUnavailable(RuntimeError):
    """The binaries are missing and could not be installed."""


def ensure_binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool; installs Debian's packages (with openssl, for the TLS
    server's certificate) when any is missing."""
    prom, tool = shutil.which("prometheus"), shutil.which("promtool")
    if prom and tool and shutil.which("openssl"):
        return prom, tool
    if os.geteuid() != 0:
        raise PrometheusUnavailable("prometheus is not installed and installing it needs root")
    done = subprocess.run(["sh", "-c", INSTALL_CMD], capture_output=True, text=True, timeout=600)
    prom, tool = shutil.which("prometheus"), shutil.which("promtool")
    if done.returncode != 0 or not (prom and tool and shutil.which("openssl")):
        raise PrometheusUnavailable(f"installing prometheus failed: {done.stderr[-2000:]}")
    return prom, tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(promtool: str, openmetrics: Path, data_dir: Path) -> None:
    """Write TSDB blocks from OpenMetrics text into data_dir (before the server starts)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=720h",
            str(openmetrics),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")


@dataclass
class PromServer:
    """A running Prometheus owned by the test session."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    client_kwargs: dict[str, object] = field(default_factory=dict)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def start(
    prometheus: str,
    workdir: Path,
    data_dir: Path,
    config_yaml: str,
    *,
    web_config_yaml: str | None = None,
    extra_args: tuple[str, ...] = (),
    scheme: str = "http",
    client_kwargs: dict[str, object] | None = None,
    attempts: int = 3,
) -> PromServer:
    """Start Prometheus on a free 127.0.0.1 port and wait for /-/ready.

    `config_yaml` may contain {port} (self-scrape target). A port taken between choosing and
    binding makes the process exit; the next attempt picks another.
    """
    client_kwargs = client_kwargs or {}
    last = ""
    for attempt in range(attempts):
        port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(config_yaml.replace("{port}", str(port)))
        args = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra_args,
        ]
        if web_config_yaml is not None:
            web = workdir / "web.yml"
            web.write_text(web_config_yaml)
            args.append(f"--web.config.file={web}")
        log_path = workdir / f"prometheus-{attempt}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = PromServer(f"{scheme}://127.0.0.1:{port}", port, proc, log_path, data_dir, client_kwargs)
        if wait_ready(server):
            return server
        server.stop()
        last = server.log_tail()
    raise RuntimeError(f"prometheus did not become ready: {last}")


def wait_ready(server: PromServer, deadline_s: float = READY_DEADLINE_S) -> bool:
    """Poll /-/ready until 200, the process exits, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=2.0, **server.client_kwargs) as client:  # type: ignore[arg-type]
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                return False
            try:
                if client.get(f"{server.url}/-/ready").status_code == 200:
                    return True
            except (httpx.TransportError, ssl.SSLError):
                pass
            # Block on the process for a moment instead of sleeping: returns early if it dies.
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(timeout=0.05)
    return False


def self_signed_cert(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl CLI (installed by ensure_binaries)."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise PrometheusUnavailable("openssl is missing; it makes the TLS test server's certificate")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    done = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise PrometheusUnavailable(f"openssl could not make a certificate: {done.stderr[-2000:]}")
    return cert, key
