"""RemoteRunner: a BatchRunner that runs each PreparedBatch on an Open Inference Protocol engine.

The plugin keeps fetch, preparation, cache, scheduling and frames; only the model call crosses
the network. Per call: the gRPC deadline is the batch's remaining time (monotonic), a batch
whose callers all went away cancels its in-flight call (polled every `poll_s` while waiting),
and a batch over the server's row limit is split into calls that run concurrently (so two
replicas share one big batch). Transport failures become per-query BackendErrors naming the
engine's address — never the token — with source "downstream": UNAVAILABLE and
RESOURCE_EXHAUSTED → 503, DEADLINE_EXCEEDED → 504.

Thread-safe: one channel, many concurrent calls (the scheduler may run several batches at once).
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import grpc
import numpy as np

from ..._proto.inference import grpc_predict_v2_pb2 as pb
from ..._proto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from ...core.errors import BackendError
from ..batch import PreparedBatch
from . import contract

DEFAULT_MAX_ROWS = 256  # when the server does not say (ModelMetadata property "max_rows")
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class RemoteSettings:
    """Where the server is and how to talk to it.

    url: "host:port", "grpc://host:port" (plaintext) or "grpcs://host:port" (TLS; also `tls`);
    several IP "host:port"s, comma-separated, spread the calls over those engines (`target`).
    token: sent as `authorization: Bearer <token>` metadata; never logged or shown.
    ca_cert: PEM text of the CA that signed the server's certificate (empty: system roots).
    server_name: TLS name to verify instead of the URL's host (a cert issued for another name).
    grpc-python has no switch to skip certificate verification; trust a self-signed server by
    passing its certificate as `ca_cert` (with `server_name` if the host differs).
    application: sent as `application` metadata: Ray Serve's gRPC proxy routes by it (the
    Serve app name, "toto" in serving/serve_config.yaml); empty for KServe / Triton.
    max_rows: rows per ModelInfer call; 0 = the server's "max_rows" property, else 256.
    timeout_s: the call deadline for batches that carry none.
    """

    url: str
    model: str = "toto"
    token: str = ""
    tls: bool = False
    ca_cert: str = ""
    server_name: str = ""
    application: str = ""
    max_rows: int = 0
    timeout_s: float = 60.0
    poll_s: float = 0.05

    def __repr__(self) -> str:  # the token never reaches logs through a repr
        return (
            f"RemoteSettings(url={self.url!r}, model={self.model!r}, token={'***' if self.token else ''!r})"
        )

    @property
    def address(self) -> str:
        """host:port (comma-separated when the URL lists several), as every message names the server."""
        return ",".join(_host_port(self.url, part) for part in self._parts())

    def _parts(self) -> list[str]:
        scheme, sep, rest = self.url.partition("://")
        body = rest if sep else scheme
        return [f"grpc://{p.strip()}" for p in body.split(",")]

    @property
    def target(self) -> str:
        """The gRPC channel target. One address: as given (a DNS name may resolve to every replica,
        e.g. a Kubernetes headless Service). Several, for engines without a balancer in front (Ray
        Serve's direct ingress: one port per replica): gRPC's `ipv4:`/`ipv6:` list, which only
        takes IP addresses of one family."""
        hosts = [urlsplit(p).hostname or "" for p in self._parts()]
        if len(hosts) == 1:
            return self.address
        families = {_ip_family(h) for h in hosts}
        if len(families) != 1 or None in families:
            raise ValueError(
                f"inference URL {self.url!r} lists several engines: they must be IP addresses of one "
                "family (for host names, give one DNS name that resolves to every replica)"
            )
        return f"{families.pop()}:{self.address}"

    @property
    def secure(self) -> bool:
        return self.tls or self.url.startswith("grpcs://") or bool(self.ca_cert)


def _host_port(url: str, part: str) -> str:
    parts = urlsplit(part)
    if not parts.hostname:
        raise ValueError(f"inference URL {url!r} has no host (expected host:port or grpcs://host:port)")
    if parts.port is None:
        raise ValueError(f"inference URL {url!r} has no port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}"


def _ip_family(host: str) -> str | None:
    try:
        return "ipv4" if isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address) else "ipv6"
    except ValueError:
        return None


def open_channel(settings: RemoteSettings) -> grpc.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Reconnect within ~2 s after a server restart instead of gRPC's default (up to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
        # Calls spread over every address the target resolves to (a list, or a DNS name with one
        # record per replica); gRPC's default, pick_first, would send them all to the first.
        ("grpc.lb_policy_name", "round_robin"),
    ]
    if not settings.secure:
        return grpc.insecure_channel(settings.target, options=options)
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    creds = grpc.ssl_channel_credentials(root_certificates=settings.ca_cert.encode() or None)
    return grpc.secure_channel(settings.target, creds, options=options)


def call_metadata(settings: RemoteSettings) -> tuple[tuple[str, str], ...]:
    metadata = []
    if settings.token:
        metadata.append(("authorization", f"Bearer {settings.token}"))
    if settings.application:
        metadata.append(("application", settings.application))
    return tuple(metadata)


def transport_error(exc: grpc.RpcError, address: str, what: str = "the forecast") -> BackendError:
    """One gRPC failure → the per-query error Grafana shows (details are the server's own words)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = (exc.details() if hasattr(exc, "details") else "") or ""
    detail = detail.splitlines()[0][:300] if detail else code.name
    where = f"the inference server at {address}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return BackendError(f"{where} did not answer {what} before the query's deadline", 504, "downstream")
    if code == grpc.StatusCode.UNAVAILABLE:
        return BackendError(f"{where} is unavailable ({detail}); is it running?", 503, "downstream")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return BackendError(f"{where} is overloaded ({detail}); retry shortly", 503, "downstream")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return BackendError(f"{where} rejected the inference token ({detail})", 502, "downstream")
    if code == grpc.StatusCode.CANCELLED:
        return BackendError(f"the call to {where} was cancelled", 503, "downstream")
    return BackendError(f"{where} failed {what}: {code.name}: {detail}", 502, "downstream")


class RemoteRunner:
    """BatchRunner over OIP v2: `runner(batch) -> (9, B, V, H)` float64 quantiles."""

    def __init__(self, settings: RemoteSettings, channel: grpc.Channel | None = None) -> None:
        self.settings = settings
        self.address = settings.address
        self._channel = channel or open_channel(settings)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._metadata = call_metadata(settings)
        self._max_rows = settings.max_rows or 0
        self._lock = threading.Lock()
        self.calls = 0  # ModelInfer calls sent (a split batch counts each part)

    @property
    def stub(self) -> pb_grpc.GRPCInferenceServiceStub:
        return self._stub

    def close(self) -> None:
        self._channel.close()

    # -- limits ---------------------------------------------------------------------------
    def max_rows(self, deadline: float | None = None) -> int:
        """The server's row limit per call, asked once (ModelMetadata) and remembered."""
        if self._max_rows:
            return self._max_rows
        timeout = min(5.0, self._remaining(deadline))
        try:
            meta = self._stub.ModelMetadata(
                pb.ModelMetadataRequest(name=self.settings.model), timeout=timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND):
                return DEFAULT_MAX_ROWS  # answer inference anyway; health reports the metadata problem
            raise transport_error(exc, self.address, "the model metadata request") from None
        value = meta.properties.get(contract.PROP_MAX_ROWS, "")
        rows = int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_ROWS
        with self._lock:
            self._max_rows = rows
        return rows

    def _remaining(self, deadline: float | None) -> float:
        if deadline is None:
            return self.settings.timeout_s
        return deadline - time.monotonic()

    # -- the BatchRunner ------------------------------------------------------------------
    def __call__(self, batch: PreparedBatch) -> np.ndarray:
        if self._remaining(batch.deadline) <= 0:
            raise BackendError(
                f"the query's deadline passed before the call to the inference server at "
                f"{self.address}",
                504,
                "downstream",
            )
        limit = self.max_rows(batch.deadline)
        parts = [
            replace(
                batch,
                values=batch.values[i : i + limit],
                mask=batch.mask[i : i + limit],
                series_ids=batch.series_ids[i : i + limit],
            )
            for i in range(0, batch.rows, limit)
        ]
        futures = [self._send(part) for part in parts]
        try:
            outputs = [self._wait(f, part) for f, part in zip(futures, parts, strict=True)]
        finally:
            for f in futures:
                f.cancel()  # a no-op for finished calls; stops siblings of a failed part
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)

    def _send(self, batch: PreparedBatch) -> grpc.Future:
        request = contract.encode_request(batch, self.settings.model, uuid.uuid4().hex[:16])
        timeout = max(0.001, self._remaining(batch.deadline))
        self.calls += 1
        return self._stub.ModelInfer.future(request, timeout=timeout, metadata=self._metadata)

    def _wait(self, future: grpc.Future, batch: PreparedBatch) -> np.ndarray:
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        while not done.wait(self.settings.poll_s):
            if batch.cancelled():
                future.cancel()
                raise BackendError(
                    f"every caller went away; the call to {self.address} was cancelled", 503, "downstream"
                )
        try:
            response = future.result()
        except grpc.FutureCancelledError:
            raise BackendError(
                f"the call to the inference server at {self.address} was cancelled", 503, "downstream"
            ) from None
        except grpc.RpcError as exc:
            raise transport_error(exc, self.address) from None
        rows, variates = batch.values.shape[:2]
        try:
            return contract.decode_response(response, rows, variates, batch.horizon)
        except contract.ContractError as exc:
            raise BackendError(
                f"the inference server at {self.address} answered outside the OIP contract: {exc}",
                502,
                "downstream",
            ) from None
