"""The plugin's own Prometheus metrics, served through Diagnostics.CollectMetrics.

A private registry (not the global one) so CollectMetrics returns exactly these families.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

QUERIES = Counter(
    "toto_queries",
    "Queries answered, by query type and outcome status.",
    ["query_type", "status"],
    registry=REGISTRY,
)
QUERY_SECONDS = Histogram(
    "toto_query_duration_seconds", "Time to answer one query, end to end.", ["query_type"], registry=REGISTRY
)
SERIES_FORECAST = Counter("toto_series_forecast", "Series forecast, by model.", ["model"], registry=REGISTRY)
BATCH_ROWS = Histogram(
    "toto_batch_rows",
    "Rows (series or multivariate groups) per model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
INFERENCE_SECONDS = Histogram("toto_inference_seconds", "Duration of one model call.", registry=REGISTRY)
QUEUE_WAIT = Histogram("toto_queue_wait_seconds", "Time a job waited for the model.", registry=REGISTRY)
QUEUE_DEPTH = Gauge("toto_queue_depth", "Jobs waiting for the model.", registry=REGISTRY)
REJECTED = Counter("toto_jobs_rejected", "Jobs refused because the queue was full.", registry=REGISTRY)
DROPPED = Counter("toto_jobs_dropped", "Jobs dropped because their caller gave up.", registry=REGISTRY)
CACHE_HITS = Counter("toto_cache_hits", "Forecasts answered from the result cache.", registry=REGISTRY)
MODEL_READY = Gauge(
    "toto_model_ready", "1 when the model is loaded and warm.", ["checkpoint"], registry=REGISTRY
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
