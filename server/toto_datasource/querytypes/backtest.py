"""queryType `backtest`: how good is each model on *this* metric? Re-forecast its own past and score.

For each series the last K = `backtestWindows` horizons of its history are re-forecast from the
`contextLength` points before each origin (rolling origins, querytypes/accuracy.py), by every model
this data source has: Toto (skipped with a notice while it loads or when it failed), the
statistical fallback and seasonal-naive, plus the query's own `model` if it is another one. All
jobs of all models are submitted before any is awaited, so Toto sees them as one batch (and a
dashboard's other queries join it). The forecasts are scored against what happened: MASE (scaled
by the one-step naive error in each window's context), CRPS (mean weighted quantile loss of the
nine quantiles) and the share of actuals inside the 10–90 % band.

Frames: a table of scores per series and model with MASE "relative to seasonal-naive" (0.31 =
31 % lower), and per series a time-series frame of the backtest medians against the actuals over
the K windows. Every frame's meta.custom carries `summary`, the one line the editor's preview
shows: "Toto beats seasonal-naive by 31 % on this metric: MASE 0.62 vs 0.90 over 8 windows".

Cost: every model's rows count (models × series × windows × patches of context and horizon), so
maxQueryPatches bounds the CPU work of the statistical models as well as Toto's.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.errors import BackendError, bad_request
from ..core.series import TimeGrid
from ..engine.types import Forecaster, ForecastOutput
from ..frames.alerting import unique_labels
from ..frames.model import DATAPLANE_VERSION, TIMESERIES_MULTI, Field, Frame, FrameMeta, Notice
from ..query.limits import MAX_HORIZON_STEPS
from ..query.model import ForecastQuery, Plan
from .accuracy import MEDIAN, Scores, Window, backtest_line, rolling_origins, score_windows
from .base import QueryCost, SubmitRequest, patches

DEFAULT_WINDOWS = 8
MAX_WINDOWS = 32
MIN_CONTEXT_STEPS = 16  # fewer points before the first origin than this cannot be scored
BASELINE = "seasonal-naive"
MODELS = ("toto", "statistical", BASELINE)  # the order of the table's rows per series
TITLES = {"toto": "Toto", "statistical": "The statistical fallback"}


@dataclass(frozen=True)
class BacktestSpec:
    windows: int


@dataclass
class ModelRun:
    model: str  # the query `model` name
    forecaster: Forecaster
    futures: list[Future[ForecastOutput]]  # one job per window, rows = series


def models_for(query: ForecastQuery) -> list[str]:
    return [*MODELS, *([query.model] if query.model not in MODELS else [])]


def title(model: str) -> str:
    return TITLES.get(model, model)


def _mean_scores(scores: list[Scores], windows: int) -> Scores:
    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return Scores(mean([s.mase for s in scores]), mean([s.crps for s in scores]),
                  mean([s.coverage for s in scores]), windows)


@dataclass
class PendingBacktest:
    request: SubmitRequest
    spec: BacktestSpec
    windows: list[list[Window]]  # per series, oldest origin first
    runs: list[ModelRun]
    notices: list[Notice]

    def frames(self) -> list[Frame]:
        req = self.request
        quantiles: dict[str, np.ndarray] = {}  # model → (9, series, K, H)
        for run in self.runs:
            outs = []
            try:
                for future in run.futures:
                    outs.append(req.wait(future, run.forecaster).quantiles)
            except BackendError as exc:
                if run.model == req.query.model:
                    raise
                self.notices.append(Notice("warning", f"{title(run.model)} failed in this backtest: "
                                                      f"{exc.message}"))
                continue
            quantiles[run.model] = np.stack(outs, axis=2)
        scores = {m: [score_windows(w, q[:, i]) for i, w in enumerate(self.windows)]
                  for m, q in quantiles.items()}
        summary, per_series = self._summaries(scores)
        req.meta.custom.update(summary=summary, backtest={
            "windows": self.spec.windows, "horizonSteps": req.plan.horizon,
            "contextSteps": self.windows[0][0].context.size, "models": list(quantiles),
            "series": per_series,
        })
        req.meta.notices.extend(self.notices)
        return [self._table(scores), *self._panels(quantiles)]

    def _headline(self, models: list[str]) -> str | None:
        """Toto when it ran on real weights, else the statistical fallback: the model to judge."""
        for run in self.runs:
            info = run.forecaster.describe()
            if run.model == "toto" and not info.get("randomWeights"):
                return "toto"
        return "statistical" if "statistical" in models else next((m for m in models if m != BASELINE), None)

    def _summaries(self, scores: dict[str, list[Scores]]) -> tuple[str, list[dict[str, str]]]:
        headline = self._headline(list(scores))
        if headline is None or BASELINE not in scores:
            return "", []
        names = [s.name for s in self.request.history.series]
        lines = [{"name": name, "summary": backtest_line(title(headline), a, BASELINE, b)}
                 for name, a, b in zip(names, scores[headline], scores[BASELINE], strict=True)]
        if len(names) == 1:
            return lines[0]["summary"], lines
        k = self.spec.windows
        subject = f"these {len(names)} series (mean)"
        line = backtest_line(title(headline), _mean_scores(scores[headline], k), BASELINE,
                             _mean_scores(scores[BASELINE], k), subject)
        return line, lines

    def _table(self, scores: dict[str, list[Scores]]) -> Frame:
        names, models, cols = [], [], {k: [] for k in ("mase", "crps", "coverage", "rel", "windows")}
        for i, series in enumerate(self.request.history.series):
            for model in scores:
                s = scores[model][i]
                names.append(series.name)
                models.append(model)
                cols["mase"].append(s.mase)
                cols["crps"].append(s.crps)
                cols["coverage"].append(s.coverage)
                cols["rel"].append(s.relative_to(scores[BASELINE][i]) if BASELINE in scores else np.nan)
                cols["windows"].append(s.windows)
        fields = [
            Field("series", pa.array(names, type=pa.string())),
            Field("model", pa.array(models, type=pa.string())),
            Field.number("MASE", np.array(cols["mase"]), config={
                "description": "Mean absolute error of the median over the one-step naive error in "
                               "the context; lower is better", "decimals": 3}),
            Field.number("CRPS", np.array(cols["crps"]), config={
                "description": "Mean weighted quantile loss of the nine quantiles; lower is better",
                "decimals": 4}),
            Field.number("coverage 10-90 %", np.array(cols["coverage"]), config={
                "description": "Share of actuals inside the p10-p90 band (0.8 when calibrated)",
                "unit": "percentunit"}),
            Field.number("relative to seasonal-naive", np.array(cols["rel"]), config={
                "description": "MASE improvement over seasonal-naive: 31 % means 31 % lower",
                "unit": "percentunit"}),
            Field.number("windows", np.array(cols["windows"], dtype=np.float64)),
        ]
        shared = self.request.meta
        meta = FrameMeta(type="", type_version=None, notices=list(shared.notices),
                         executed_query_string=shared.executed, custom=dict(shared.custom),
                         preferred_visualisation_type="table")
        return Frame("backtest scores", fields, meta=meta)

    def _panels(self, quantiles: dict[str, np.ndarray]) -> list[Frame]:
        req = self.request
        grid = req.history.grid
        span = self.spec.windows * req.plan.horizon
        ts = grid.timestamps_ms()[-span:]
        frames = []
        for i, (series, labels) in enumerate(zip(req.history.series, unique_labels(req.history.series),
                                                  strict=True)):
            fields = [Field.time("time", ts),
                      Field.number("actual", series.values[-span:], dict(labels),
                                   {"displayNameFromDS": f"{series.name} actual"})]
            for model, q in quantiles.items():
                median = q[MEDIAN, i].reshape(-1)
                fields.append(Field.number(f"backtest {model} p50", median, {**labels, "model": model}, {
                    "displayNameFromDS": f"{series.name} {title(model)} p50 (backtest)",
                    "custom": {"lineStyle": {"fill": "dash", "dash": [10, 10]}}}))
            meta = FrameMeta(type=TIMESERIES_MULTI, type_version=DATAPLANE_VERSION,
                             notices=list(req.meta.notices), executed_query_string=req.meta.executed,
                             custom=dict(req.meta.custom))
            frames.append(Frame(f"{series.name} backtest", fields, meta=meta))
        return frames


class BacktestQueryType:
    name = "backtest"
    description = ("each model re-forecasts the last backtestWindows horizons of the history, scored "
                   "against what happened (MASE, CRPS, 10-90 % coverage)")
    preview_summary = True  # service/resources.py's preview runs it and returns meta.custom.summary
    schema: Mapping[str, Any] = {
        "backtestWindows": {
            "type": "integer", "minimum": 1, "maximum": MAX_WINDOWS, "default": DEFAULT_WINDOWS,
            "description": "Rolling origins of a backtest (queryType=backtest): the last K horizons of "
                           "the history, each re-forecast from the context before it.",
        },
    }

    def parse_params(self, obj: Mapping[str, Any]) -> BacktestSpec:
        windows = obj.get("backtestWindows", DEFAULT_WINDOWS)
        if isinstance(windows, bool) or not isinstance(windows, int) or not 1 <= windows <= MAX_WINDOWS:
            raise bad_request(f"backtestWindows: {windows!r} must be an integer from 1 to {MAX_WINDOWS}")
        return BacktestSpec(windows)

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        """The forecast plan's context, plus the K horizons that are re-forecast and scored."""
        spec = query.params
        assert isinstance(spec, BacktestSpec)
        span = spec.windows * plan.horizon
        if span > MAX_HORIZON_STEPS:
            raise bad_request(
                f"backtestWindows: {spec.windows} windows × {plan.horizon} steps of horizon = {span} "
                f"steps to re-forecast; at most {MAX_HORIZON_STEPS}: use fewer windows or a shorter horizon")
        grid = plan.grid
        return replace(plan, grid=TimeGrid(grid.end_ms, grid.step_ms, grid.count + span))

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        spec = query.params
        assert isinstance(spec, BacktestSpec)
        context = max(plan.grid.count - spec.windows * plan.horizon, 1)
        each = patches(context, plan.horizon)
        models = len(models_for(query))
        return QueryCost(models * series * spec.windows * each,
                         f"{models} models × {series} series × {spec.windows} windows × {each} patches",
                         "Use fewer backtestWindows, fewer series, a shorter contextLength or horizon.")

    def submit(self, request: SubmitRequest) -> PendingBacktest:
        spec = request.query.params
        assert isinstance(spec, BacktestSpec)
        horizon = request.plan.horizon
        values = np.stack([s.values for s in request.history.series])
        context = values.shape[1] - spec.windows * horizon
        # Observed points before the first origin, for the best-covered series (a source pads with NaN).
        before = int(np.isfinite(values[:, : max(context, 0)]).sum(axis=1).max())
        if before < MIN_CONTEXT_STEPS:
            raise bad_request(
                f"backtestWindows: {spec.windows} windows of {horizon} steps leave {before} observed "
                f"points of context before the first one; need at least {MIN_CONTEXT_STEPS}: use fewer "
                "windows, a shorter horizon or a longer time range")
        windows = [rolling_origins(row, spec.windows, horizon, context_length=context) for row in values]
        notices: list[Notice] = []
        runs: list[ModelRun] = []
        for model in models_for(request.query):
            try:
                forecaster = (request.forecaster if model == request.query.model
                              else request.forecaster_for(model))
            except BackendError as exc:
                notices.append(Notice("info", f"{title(model)} is not in this backtest: {exc.message}"))
                continue
            if forecaster.describe().get("randomWeights"):
                notices.append(Notice("warning", f"{title(model)}'s checkpoint has random weights (a test "
                                                 "model): its scores say nothing about Toto."))
            futures = [request.forecast(request.job(np.stack([w[k].context for w in windows]), horizon),
                                        forecaster)
                       for k in range(spec.windows)]
            runs.append(ModelRun(model, forecaster, futures))
        return PendingBacktest(request, spec, windows, runs, notices)
