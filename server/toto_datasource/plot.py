"""A PNG of history, median, 10–90 % band and threshold: what a panel would show."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np


def plot_forecast(
    path: str,
    title: str,
    history_ms: np.ndarray,
    history: np.ndarray,
    future_ms: np.ndarray,
    median: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    threshold: float | None = None,
    model_label: str = "",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def dates(ms: np.ndarray) -> list[datetime]:
        return [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ms]

    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    ax.plot(dates(history_ms), history, color="#3274d9", linewidth=1.2, label="history")
    ax.plot(
        dates(future_ms), median, color="#e0752d", linestyle="--", linewidth=1.6,
        label=f"median ({model_label})",
    )
    ax.fill_between(dates(future_ms), lower, upper, color="#e0752d", alpha=0.2, label="10–90 % band")
    if threshold is not None:
        ax.axhline(threshold, color="#c4162a", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
