"""Loopback upstreams that misbehave, as context managers: each listens on 127.0.0.1 on a free
port, serves from one daemon thread, and at exit closes every connection and stops within
`STOP_S` whatever a client is doing.

- `slow_headers`: reads the request, then sends the status line and headers one byte every
  `interval_s` (1 byte/s is what beat a 5 s httpx timeout for 71 s).
- `blackhole`: accepts and never answers.
- `echo_request`: answers 502 with an HTML page that quotes the request line (URL with its query
  string) and every header (Authorization included), like a broken proxy's error page.
- `huge_body`: answers 200 and streams `size` bytes of JSON whitespace (or forever if size is 0).

Each exposes `url`, `requests` (raw request heads received) and `finished` (set when a slow
response was sent completely: a client that gave up earlier leaves it unset).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

STOP_S = 2.0
HEAD_LIMIT = 64 * 1024


class _Requests(list[bytes]):
    """The request heads received, with a wait for the n-th (an event, not a poll)."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def append(self, head: bytes) -> None:
        with self._cond:
            super().append(head)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self) >= n, timeout)


@dataclass
class FaultServer:
    url: str
    requests: _Requests = field(default_factory=_Requests)
    finished: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])


def _read_head(conn: socket.socket, stop: threading.Event) -> bytes:
    conn.settimeout(0.2)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT and not stop.is_set():
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(rest) < length and not stop.is_set():  # drain a form body so the client's write ends
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        rest += chunk
    return head


@contextlib.contextmanager
def _serve(handle: Callable[[socket.socket, FaultServer], None]) -> Iterator[FaultServer]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    server = FaultServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    conns: list[socket.socket] = []
    workers: list[threading.Thread] = []

    def one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            handle(conn, server)

    def accept_loop() -> None:
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        while not server.stop.is_set():
            if not sel.select(0.1):
                continue
            with contextlib.suppress(BlockingIOError):
                conn, _ = listener.accept()
                conn.setblocking(True)
                conns.append(conn)
                t = threading.Thread(target=one, args=(conn,), daemon=True, name="fault-conn")
                workers.append(t)
                t.start()
        sel.close()

    acceptor = threading.Thread(target=accept_loop, daemon=True, name="fault-accept")
    acceptor.start()
    try:
        yield server
    finally:
        server.stop.set()
        acceptor.join(STOP_S)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        listener.close()
        for t in workers:
            t.join(STOP_S / max(1, len(workers)))


def _send_slowly(conn: socket.socket, data: bytes, interval_s: float, server: FaultServer) -> bool:
    for i in range(len(data)):
        if server.stop.wait(interval_s):
            return False
        conn.sendall(data[i : i + 1])
    return True


@contextlib.contextmanager
def slow_headers(interval_s: float = 1.0) -> Iterator[FaultServer]:
    body = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
        + b"x" * 64
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )

    def handle(conn: socket.socket, server: FaultServer) -> None:
        server.requests.append(_read_head(conn, server.stop))
        if _send_slowly(conn, head, interval_s, server):
            conn.sendall(body)
            server.finished.set()

    with _serve(handle) as server:
        yield server


@contextlib.contextmanager
def blackhole() -> Iterator[FaultServer]:
    def handle(conn: socket.socket, server: FaultServer) -> None:
        server.requests.append(_read_head(conn, server.stop))
        server.stop.wait()

    with _serve(handle) as server:
        yield server


@contextlib.contextmanager
def echo_request(status: int = 502) -> Iterator[FaultServer]:
    def handle(conn: socket.socket, server: FaultServer) -> None:
        head = _read_head(conn, server.stop)
        server.requests.append(head)
        echoed = head.decode("latin-1").replace("\r\n", "<br>")
        body = f"<html><h1>Bad gateway</h1>upstream failed for request: {echoed}</html>".encode("latin-1")
        conn.sendall(
            f"HTTP/1.1 {status} Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        server.finished.set()

    with _serve(handle) as server:
        yield server


@contextlib.contextmanager
def huge_body(size: int = 0, chunk: int = 256 * 1024) -> Iterator[FaultServer]:
    """`size` 0: a chunked body that never ends (until the client hangs up or teardown)."""

    def handle(conn: socket.socket, server: FaultServer) -> None:
        server.requests.append(_read_head(conn, server.stop))
        block = b" " * chunk
        if size:
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            sent = 0
            while sent < size and not server.stop.is_set():
                n = min(chunk, size - sent)
                conn.sendall(block[:n])
                sent += n
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = f"{chunk:x}\r\n".encode() + block + b"\r\n"
            while not server.stop.is_set():
                conn.sendall(frame)
        server.finished.set()

    with _serve(handle) as server:
        yield server
