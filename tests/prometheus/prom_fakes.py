"""A tiny HTTP server for upstream behaviour a real Prometheus cannot be made to show:
garbage JSON, a server that never answers, arbitrary 5xx, an error page that echoes the request's
secrets, off-grid or duplicated timestamps, and a record of the headers a client sent.

The path prefix picks the behaviour: a data source URL of http://127.0.0.1:PORT/garbage makes
every API call hit /garbage/api/v1/...
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeUpstream:
    url: str
    server: ThreadingHTTPServer
    release: threading.Event  # set to let /slow requests finish (at teardown)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)  # request path with its query string

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _handler(fake: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _params(self) -> dict[str, str]:
            query = parse_qs(urlsplit(self.path).query)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                query.update(parse_qs(self.rfile.read(length).decode()))
            return {k: v[-1] for k, v in query.items()}

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            mode = urlsplit(self.path).path.strip("/").split("/")[0]
            params = self._params()
            fake.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
            fake.seen_paths.append(self.path)
            if mode == "garbage":
                self._send(200, b'{"status": "success", "data": {"resultType": "matr')
            elif mode == "html":
                self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
            elif mode == "slow":
                fake.release.wait(60)  # never answers before the client gives up
                self._send(200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}')
            elif mode.startswith("status"):
                status = int(mode.removeprefix("status"))
                # A broken proxy that echoes the request headers into its error page.
                echoed = " ".join(f"{k}: {v}" for k, v in self.headers.items())
                self._send(
                    status, f"<html>upstream exploded; request was {echoed}</html>".encode(), "text/html"
                )
            elif mode == "unauthorized":
                self._send(401, b"Unauthorized\n", "text/plain")
            elif mode == "misaligned":
                self._send(200, json.dumps(_misaligned(params)).encode())
            elif mode == "nobuildinfo" and self.path.endswith("/buildinfo"):
                self._send(404, b"404 page not found\n", "text/plain")  # an older compatible server
            elif mode in ("echo", "nobuildinfo"):
                self._send(200, json.dumps(_echo(params, self.path)).encode())
            else:
                self._send(404, b"404 page not found\n", "text/plain")

    return Handler


def _misaligned(params: dict[str, str]) -> dict[str, object]:
    """Points 10 s off the grid, one duplicate and one +Inf on an otherwise regular series."""
    start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
    n = round((end - start) / step) + 1
    values: list[list[object]] = [[start + i * step, str(float(i))] for i in range(n)]
    values[2] = [start + 2 * step + 10, "2.5"]  # off grid, snaps to step 2
    values[6] = [start + 6 * step, "+Inf"]
    values.insert(4, [start + 3 * step, "3.25"])  # a second point at step 3: the later one wins
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "odd"}, "values": values}]},
    }


def _echo(params: dict[str, str], path: str) -> dict[str, object]:
    if path.split("?")[0].endswith("/buildinfo"):
        return {"status": "success", "data": {"version": "9.9.9-fake"}}
    if path.split("?")[0].endswith("/query"):
        return {"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}}
    start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
    n = round((end - start) / step) + 1
    values = [[start + i * step, "1"] for i in range(n)]
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "echo"}, "values": values}]},
    }


def start_fake() -> FakeUpstream:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    fake = FakeUpstream(f"http://127.0.0.1:{server.server_address[1]}", server, threading.Event())
    server.RequestHandlerClass = _handler(fake)
    threading.Thread(target=server.serve_forever, name="fake-prometheus", daemon=True).start()
    return fake
