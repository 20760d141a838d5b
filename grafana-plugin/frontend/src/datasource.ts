import { CoreApp, DataSourceInstanceSettings, ScopedVars, TimeRange } from '@grafana/data';
import { DataSourceWithBackend } from '@grafana/runtime';

import { annotationSupport } from './annotations';
import { findSource } from './registry';
import { DEFAULT_QUERY, DURATION_RE, PreviewResult, TotoJsonData, TotoQuery } from './types';

/**
 * Queries, health checks and resource calls all go to the Python backend through Grafana:
 * query() → /api/ds/query → QueryData, testDatasource() → /health → CheckHealth (both inherited).
 * What differs per source (readiness, template variables) is asked of the source's registry entry.
 */
export class DataSource extends DataSourceWithBackend<TotoQuery, TotoJsonData> {
  readonly jsonData: TotoJsonData;

  constructor(settings: DataSourceInstanceSettings<TotoJsonData>) {
    super(settings);
    this.jsonData = settings.jsonData ?? {};
    this.annotations = annotationSupport;
  }

  getDefaultQuery(_app: CoreApp): Partial<TotoQuery> {
    const horizon = this.jsonData.defaultHorizon;
    return horizon && DURATION_RE.test(horizon) ? { ...DEFAULT_QUERY, horizon } : DEFAULT_QUERY;
  }

  filterQuery(query: TotoQuery): boolean {
    return !query.hide && (findSource(query.source ?? 'demo')?.isReady?.(query) ?? true);
  }

  /** Template variables ($instance, $__interval, ...) are resolved here, before the query leaves the browser. */
  applyTemplateVariables(query: TotoQuery, scopedVars: ScopedVars): TotoQuery {
    const interpolate = findSource(query.source ?? 'demo')?.interpolate;
    return interpolate ? interpolate(query, scopedVars) : { ...query };
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
