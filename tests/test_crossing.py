"""The alerting arithmetic on plain arrays: first crossings and the never-crossed sentinel, the
breach probability interpolated from the quantiles, anomaly scores in band widths, unique labels."""

from __future__ import annotations

import numpy as np
from toto_datasource.engine.types import QUANTILE_LEVELS
from toto_datasource.frames.alerting import unique_labels
from toto_datasource.querytypes.crossing import (
    breach_probability,
    cdf_at,
    first_crossing,
    first_crossings,
    time_to_breach_seconds,
)
from toto_datasource.querytypes.scoring import anomaly_flags, anomaly_scores, latest_finite
from toto_datasource.sources.base import Series

Z = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])  # N(0,1) quantiles


def test_first_crossings_and_the_sentinel() -> None:
    v = np.array([[1.0, 2, 3, 4], [5, 4, 3, 2], [0, 0, 0, 0]])
    assert first_crossings(v, 3, "above").tolist() == [2, 0, -1]
    assert first_crossings(v, 3, "below").tolist() == [0, 2, 0]
    for row in v:
        expected = first_crossing(row, 3, "above")
        assert first_crossings(row[None], 3, "above")[0] == (-1 if expected is None else expected)
    # (index + 1) steps; never crossing = horizon + 1 steps: finite, positive, beyond any real answer.
    assert time_to_breach_seconds(np.array([2, 0, -1]), 60_000, 4).tolist() == [180.0, 60.0, 300.0]


def test_cdf_interpolates_the_quantiles_and_has_exponential_tails() -> None:
    q = 10.0 + Z * 2.0  # N(10, 2)
    assert np.allclose([cdf_at(q, v) for v in q], QUANTILE_LEVELS)  # F(q_k) = k
    assert np.isclose(cdf_at(q, (q[3] + q[4]) / 2), 0.45)  # linear between levels
    # Tail: 1 σ beyond q0.9 the Gaussian has 1.1 %; exponential tail of the last segment ≈ 1.0 %.
    assert 0.008 < 1 - cdf_at(q, q[-1] + 2.0) < 0.013
    assert 0 < cdf_at(q, q[0] - 2.0) < 0.013
    assert cdf_at(q, 1e12) == 1.0 and cdf_at(q, -1e12) == 0.0
    flat = np.full(9, 5.0)  # a degenerate band: all mass at 5
    assert cdf_at(flat, 4.9) == 0.0 and cdf_at(flat, 5.0) == 1.0 and cdf_at(flat, 5.1) == 1.0


def test_breach_probability_is_monotone_in_the_threshold() -> None:
    rng = np.random.default_rng(0)
    quantiles = np.sort(rng.normal(size=(9, 3, 40)).cumsum(axis=2), axis=0)  # (9, series, horizon)
    thresholds = np.linspace(-15, 15, 301)
    above = np.array([breach_probability(quantiles, t, "above") for t in thresholds])
    below = np.array([breach_probability(quantiles, t, "below") for t in thresholds])
    assert np.all(np.diff(above, axis=0) <= 1e-12) and np.all(np.diff(below, axis=0) >= -1e-12)
    assert np.all((above >= 0) & (above <= 1)) and np.all((below >= 0) & (below <= 1))
    # Consistent with crossing detection: when the q-forecast crosses, P >= 1 - q (above) / q (below).
    for t in thresholds[::10]:
        for q, direction in ((0.9, "above"), (0.7, "above"), (0.1, "below")):
            crossed = first_crossings(quantiles[QUANTILE_LEVELS.index(q)], t, direction) >= 0
            p = breach_probability(quantiles, t, direction)
            bound = 1 - q if direction == "above" else q
            assert np.all(p[crossed] >= bound - 1e-9)


def test_anomaly_scores_in_band_widths() -> None:
    lower, median, upper = np.full(6, 8.0), np.full(6, 10.0), np.full(6, 12.0)
    actual = np.array([10.0, 12.0, 16.0, 4.0, np.nan, 13.0])
    scores = anomaly_scores(actual, lower, median, upper)
    assert scores[:4].tolist() == [0.0, 0.0, 1.0, 1.0] and np.isnan(scores[4]) and scores[5] == 0.25
    assert np.nan_to_num(anomaly_flags(scores), nan=-1).tolist() == [0, 0, 0, 0, -1, 0]
    assert anomaly_flags(np.array([1.01]))[0] == 1.0  # flagged beyond one band width
    zero_width = anomaly_scores(np.array([10.5]), np.array([10.0]), np.array([10.0]), np.array([10.0]))
    assert np.isfinite(zero_width).all() and zero_width[0] > 1e6
    assert latest_finite(np.array([1.0, 2.0, np.nan])) == 2.0 and np.isnan(latest_finite(np.array([np.nan])))


def test_colliding_label_sets_get_the_series_name() -> None:
    series = [Series("a", {"job": "x"}, np.zeros(2)), Series("b", {"job": "x"}, np.zeros(2)),
              Series("c", {"job": "y"}, np.zeros(2)), Series("a", {"job": "x"}, np.zeros(2))]
    labels = unique_labels(series)
    assert labels[2] == {"job": "y"} and labels[0]["series"] == "a" and labels[1]["series"] == "b"
    assert len({tuple(sorted(x.items())) for x in labels}) == 4
