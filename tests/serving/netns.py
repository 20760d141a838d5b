"""Loopback-only network namespaces for tests, and a bridge from the root namespace into one.

Ray binds the machine's routable address whatever --node-ip-address says, so the
Ray head runs inside a namespace whose only interface is `lo`. The client side (this pytest
process, or a plugin process started as Grafana starts it) stays in the root namespace and
reaches Serve's gRPC proxy through `LoopbackBridge`: it listens on 127.0.0.1 here and opens
each upstream connection from inside the namespace (setns on the bridge's own thread, which
switches back at once; sockets keep the namespace they were created in). Nothing listens
beyond loopback on either side. Chosen over running the client under `ip netns exec` so the
test keeps its client in-process and a plugin subprocess can point `inferenceUrl` at it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading


def available() -> str:
    """Empty when loopback namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "`ip netns` is not available"
    return ""


def create(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)


def pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(1 << 16):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class LoopbackBridge:
    """127.0.0.1:<random> in the root namespace → 127.0.0.1:`port` inside namespace `name`."""

    def __init__(self, name: str, port: int) -> None:
        self._target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        self._port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="netns-bridge", daemon=True)
        self._thread.start()

    def _connect_inside(self) -> socket.socket:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            os.setns(self._target, os.CLONE_NEWNET)
            try:
                return socket.create_connection(("127.0.0.1", self._port), timeout=10)
            finally:
                os.setns(home, os.CLONE_NEWNET)
        finally:
            os.close(home)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = self._connect_inside()
            except OSError:
                client.close()  # the caller sees a refused/reset connection, as it would directly
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        os.close(self._target)
