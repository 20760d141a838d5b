"""Ray Serve settings that shorten the hops of one OIP call, as measured for the Toto app.

A sequential 1-series call through Serve's gRPC proxy, measured on 2 shared cores with
timestamps inside the replica (6 rounds of 25 sequential calls per setting, medians, batch wait 0):
client → proxy → ModelInfer entry 5.9–7.8 ms, replica's own work outside the model ~1.5 ms
(decode 0.5, @serve.batch hand-off 0.5, worker thread 0.4, encode 0.06), return → client
3.7–4.5 ms. The plain grpcio server spends +1.4 ms in all, so Serve's proxy and the actor call
between it and the replica cost ~9–10 ms. The flags below (Ray's documented "throughput
optimized" set, docs/serve/advanced-guides/performance.md, without direct ingress, which would
drop the gRPC proxy) took the two hops from a median 10.6 ms to 9.3 ms and everything outside
the model from 13.6 to 11.3 ms, and raised 1 series × 16 clients from ~148 to ~175 series/s.

Where each is read: the proxy flags in the proxy actor, which inherits the Ray node's
environment (`ray start`'s env; on KubeRay the head/worker container env), the replica ones in
the replica (the deployment's runtime_env sets them, so they apply on any cluster).
"""

from __future__ import annotations

# Read by Serve's proxy: route to the replica over Serve's own gRPC channel instead of a Ray
# actor call, and run the router on the proxy's loop instead of a second thread's loop.
PROXY_ENV = {
    "RAY_SERVE_PROXY_USE_GRPC": "1",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
}
# Read by each replica: ModelInfer runs on the replica's main loop (it never blocks it: the model
# call runs in a worker thread), and request-path log lines are written in batches (an ERROR
# line still flushes at once).
REPLICA_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
}

# Direct ingress (Ray >= 2.56; read by the controller and every replica, so it belongs in the
# node's env like PROXY_ENV): each replica of the app serves the OIP service on its own gRPC port,
# allocated from DIRECT_INGRESS_MIN_GRPC_PORT upwards per node, and the plugin calls it without the
# proxy hop (the proxy still answers on the usual port). Measured on 2 shared cores, one replica,
# the plugin's scheduler in front (bench/RESULTS.md, 2026-12-02 14:35): one-series overhead over in-process
# +6.4 ms direct vs +10.6 ms through the proxy (bench/remote.py); 1 series x 16 clients 0.82x vs
# 0.70x in-process throughput (means of three alternations on one cluster); timestamps in the
# replica put ~4 ms around a direct call's model time vs ~7 ms through the proxy. It is the data
# path Ray's own HAProxy ingress (RAY_SERVE_ENABLE_HA_PROXY=1) balances across replicas.
DIRECT_INGRESS_MIN_GRPC_PORT = 40000
DIRECT_INGRESS_ENV = {
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(DIRECT_INGRESS_MIN_GRPC_PORT),
}
