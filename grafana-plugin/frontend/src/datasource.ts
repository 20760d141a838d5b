import { CoreApp, DataSourceInstanceSettings, ScopedVars, TimeRange } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY, DURATION_RE, PreviewResult, TotoJsonData, TotoQuery } from './types';

/** Multi-value variables become a PromQL regex alternation, as in Prometheus' own data source. */
function promqlFormat(value: string | string[]): string {
  if (!Array.isArray(value)) {
    return value;
  }
  const escaped = value.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

/**
 * Queries, health checks and resource calls all go to the Python backend through Grafana:
 * query() → /api/ds/query → QueryData, testDatasource() → /health → CheckHealth (both inherited).
 */
export class DataSource extends DataSourceWithBackend<TotoQuery, TotoJsonData> {
  readonly jsonData: TotoJsonData;

  constructor(settings: DataSourceInstanceSettings<TotoJsonData>) {
    super(settings);
    this.jsonData = settings.jsonData ?? {};
  }

  getDefaultQuery(_app: CoreApp): Partial<TotoQuery> {
    const horizon = this.jsonData.defaultHorizon;
    return horizon && DURATION_RE.test(horizon) ? { ...DEFAULT_QUERY, horizon } : DEFAULT_QUERY;
  }

  filterQuery(query: TotoQuery): boolean {
    return !query.hide && !(query.source === 'prometheus' && !query.expr?.trim());
  }

  /** Template variables ($instance, $__interval, ...) are resolved here, before the query leaves the browser. */
  applyTemplateVariables(query: TotoQuery, scopedVars: ScopedVars): TotoQuery {
    const templateSrv = getTemplateSrv();
    const out = { ...query };
    if (query.expr) {
      out.expr = templateSrv.replace(query.expr, scopedVars, promqlFormat);
    }
    if (query.legendFormat) {
      // Grafana leaves {{label}} alone; only $variables are replaced.
      out.legendFormat = templateSrv.replace(query.legendFormat, scopedVars);
    }
    return out;
  }

  metricNames(prefix: string): Promise<string[]> {
    return this.getResource<{ names?: string[] }>('prometheus/metric-names', { match: prefix }).then(
      (r) => r.names ?? []
    );
  }

  /** What the query would fetch: series count, step and history span, without running the model. */
  preview(query: TotoQuery, range: TimeRange, intervalMs?: number): Promise<PreviewResult> {
    const scopedVars: ScopedVars = intervalMs
      ? { __interval: { text: `${intervalMs}ms`, value: `${intervalMs}ms` }, __interval_ms: { text: `${intervalMs}`, value: intervalMs } }
      : {};
    const body = this.applyTemplateVariables(query, scopedVars);
    return this.postResource<PreviewResult>(
      'preview',
      { ...body, range: { from: range.from.valueOf(), to: range.to.valueOf() }, intervalMs },
      { showErrorAlert: false }
    );
  }
}
