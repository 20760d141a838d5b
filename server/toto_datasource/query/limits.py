"""The query model's limits: one definition, used by validation, the schema and the query types."""

MAX_HORIZON_STEPS = 8192
DEFAULT_HORIZON_STEPS = 64
MAX_ANOMALY_WINDOW_STEPS = 4096
MAX_INLINE_SERIES = 1000
MAX_INLINE_POINTS = 100_000
