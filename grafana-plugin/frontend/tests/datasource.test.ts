import { CoreApp, ScopedVars } from '@grafana/data';
import { setTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DataSource } from '../src/datasource';
import { metricNames } from '../src/sources/prometheus';
import { DEFAULT_QUERY, TotoQuery } from '../src/types';
import { makeDataSource, makeRange, PREVIEW } from './helpers';
import { schemaErrors } from './schema';

// A template service with $instance (multi-value) and $job, and Grafana's $__interval from scopedVars.
const variables: Record<string, string | string[]> = { instance: ['10.0.0.1:9100', 'db-2:9100'], job: 'node' };
setTemplateSrv({
  replace(target = '', scopedVars?: ScopedVars, format?: Function) {
    return target.replace(/\$(\w+)/g, (match, name) => {
      const value = scopedVars?.[name]?.value ?? variables[name];
      if (value === undefined) {
        return match;
      }
      return typeof format === 'function' ? format(value) : String(value);
    });
  },
} as unknown as TemplateSrv);

describe('DataSource', () => {
  it('interpolates variables in expr and legend before the query leaves the browser', () => {
    const ds = makeDataSource();
    const query = {
      ...DEFAULT_QUERY,
      refId: 'A',
      source: 'prometheus' as const,
      expr: 'rate(node_cpu_seconds_total{job="$job", instance=~"$instance"}[$__interval])',
      legendFormat: '{{instance}} $job',
    };
    const out = ds.applyTemplateVariables(query, { __interval: { text: '1m', value: '1m' } });
    expect(out.expr).toBe('rate(node_cpu_seconds_total{job="node", instance=~"(10\\.0\\.0\\.1:9100|db-2:9100)"}[1m])');
    expect(out.legendFormat).toBe('{{instance}} node');
    expect(schemaErrors(out)).toEqual([]);
  });

  it('default query follows the data source default horizon', () => {
    expect(makeDataSource().getDefaultQuery(CoreApp.PanelEditor)).toEqual(DEFAULT_QUERY);
    expect(makeDataSource({ defaultHorizon: '6h' }).getDefaultQuery(CoreApp.PanelEditor)).toEqual({ ...DEFAULT_QUERY, horizon: '6h' });
  });

  it('skips hidden queries and Prometheus queries without an expression', () => {
    const ds = makeDataSource();
    expect(ds.filterQuery({ refId: 'A', ...DEFAULT_QUERY })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', ...DEFAULT_QUERY, hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', source: 'prometheus', expr: ' ' })).toBe(false);
  });

  it('calls the resource routes the backend serves', async () => {
    const ds = makeDataSource();
    const get = jest.spyOn(ds, 'getResource').mockResolvedValue({ names: ['up'] });
    const post = jest.spyOn(ds, 'postResource').mockResolvedValue(PREVIEW);

    await expect(metricNames(ds, 'u')).resolves.toEqual(['up']);
    expect(get).toHaveBeenCalledWith('prometheus/metric-names', { match: 'u' });

    const range = makeRange();
    await expect(ds.preview({ refId: 'A', ...DEFAULT_QUERY }, range, 60000)).resolves.toEqual(PREVIEW);
    const [path, body] = post.mock.calls[0];
    expect(path).toBe('preview');
    expect(body).toMatchObject({ ...DEFAULT_QUERY, range: { from: range.from.valueOf(), to: range.to.valueOf() }, intervalMs: 60000 });
    expect(schemaErrors(body)).toEqual([]);
  });

  it('leaves query() and testDatasource() to DataSourceWithBackend (QueryData, CheckHealth)', () => {
    expect(Object.prototype.hasOwnProperty.call(DataSource.prototype, 'query')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(DataSource.prototype, 'testDatasource')).toBe(false);
  });

  it('supports annotations: new annotation queries are threshold queries, sent marked as annotations', () => {
    const ds = makeDataSource();
    const support = ds.annotations!;
    expect(support.getDefaultQuery?.()).toMatchObject({ queryType: 'threshold', source: 'demo' });

    const saved = support.prepareAnnotation!({ name: 'Breaches', enable: true, iconColor: 'red' } as any);
    expect(saved.target).toMatchObject({ refId: 'Anno', queryType: 'threshold' });

    const target: TotoQuery = { refId: 'Anno', source: 'prometheus', expr: 'db_qps', threshold: 500 };
    const sent = support.prepareQuery!({ ...saved, target } as any);
    expect(sent).toEqual({ ...target, queryType: 'threshold', annotation: true });
    expect(schemaErrors(sent)).toEqual([]);
    expect(support.prepareQuery!({ name: 'x' } as any)).toBeUndefined();
  });
});
