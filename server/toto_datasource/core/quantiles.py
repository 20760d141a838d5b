"""The model's quantile levels and their display names: one definition for engine, query
validation and frames (Toto 2.0 returns exactly these nine, sorted)."""

QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)


def quantile_name(q: float) -> str:
    """p10, p50, p90: the suffix of a band field's display name and its `quantile` label."""
    return f"p{round(q * 100):d}"


def quantile_index(q: float) -> int:
    """Position of level q in the model's output; raises ValueError for a level it lacks."""
    return QUANTILE_LEVELS.index(round(q, 1))
