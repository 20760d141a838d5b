import { queryKeys, queryTypeParts, sourceParts } from '../src/registry';
import { MAX_ANOMALY_WINDOW_STEPS } from '../src/querytypes/anomaly';
import { MAX_LEAD_TIMES } from '../src/querytypes/recorded';
import { DIRECTIONS } from '../src/querytypes/threshold';
import { SCENARIOS } from '../src/sources/demo';
import { CONTEXT_LENGTH, DEFAULT_QUERY, MAX_HORIZON_STEPS, MODELS, QUANTILE_LEVELS } from '../src/types';
import { pending, schema, schemaErrors } from './schema';

// Keys of Grafana's own that the schema also lists.
const GRAFANA_KEYS = ['refId', 'hide', 'intervalMs', 'maxDataPoints'];
const sorted = (xs: readonly unknown[]) => [...xs].map(String).sort();

describe('the registries match query.schema.json (+ tests/schema.pending.json)', () => {
  it('have the same query keys', () => {
    expect(sorted([...queryKeys(), ...GRAFANA_KEYS])).toEqual(sorted(Object.keys(schema.properties)));
  });

  it.each([
    ['queryType', ['', ...queryTypeParts().map((p) => p.value)]],
    ['source', sourceParts().map((p) => p.value)],
    ['scenario', SCENARIOS],
    ['model', MODELS],
    ['direction', DIRECTIONS],
    ['thresholdQuantile', QUANTILE_LEVELS],
  ])('have the same %s values', (key, values) => {
    expect(sorted(values)).toEqual(sorted(schema.properties[key].enum));
  });

  it('have the same limits (one definition: the backend schema)', () => {
    const steps = (key: string) => schema.properties[key].oneOf.find((o: { type: string }) => o.type === 'integer').maximum;
    expect(steps('horizon')).toBe(MAX_HORIZON_STEPS);
    expect(steps('anomalyWindow')).toBe(MAX_ANOMALY_WINDOW_STEPS);
    expect(schema.properties.leadTime.oneOf.find((o: { type: string }) => o.type === 'array').maxItems).toBe(MAX_LEAD_TIMES);
    const ctx = schema.properties.contextLength;
    expect([ctx.minimum, ctx.maximum, ctx.default]).toEqual([CONTEXT_LENGTH.min, CONTEXT_LENGTH.max, CONTEXT_LENGTH.default]);
  });

  it('have the same quantile levels', () => {
    expect([...QUANTILE_LEVELS]).toEqual(schema.properties.quantiles.items.enum);
  });

  it('the pending fragment is gone: every editor field is in the backend schema', () => {
    expect(Object.keys(pending.properties)).toEqual([]);
  });

  it('default query is the contract default and valid', () => {
    expect(DEFAULT_QUERY).toEqual({
      queryType: 'forecast',
      source: 'demo',
      scenario: 'postgres-load',
      horizon: '1h',
      quantiles: [0.1, 0.5, 0.9],
      includeHistory: true,
    });
    expect(schemaErrors({ refId: 'A', ...DEFAULT_QUERY })).toEqual([]);
  });

  it('the validator rejects what the backend rejects', () => {
    expect(schemaErrors({ horizon: '' })).not.toEqual([]);
    expect(schemaErrors({ quantiles: [0.15] })).not.toEqual([]);
    expect(schemaErrors({ source: 'influx' })).not.toEqual([]);
    expect(schemaErrors({ backtestWindows: 33 })).not.toEqual([]);
    expect(schemaErrors({ queryType: 'recorded', leadTime: ['1h', '1h'] })).not.toEqual([]);
    expect(schemaErrors({ queryType: 'recorded', leadTime: ['15m', '1h'] })).toEqual([]);
    expect(schemaErrors({ source: 'grafana', sourceDatasource: { uid: 'x', type: 'toto-forecast-datasource' } })).not.toEqual([]);
    expect(schemaErrors({ source: 'grafana', sourceDatasource: { uid: 'p', type: 'prometheus' }, sourceQuery: { refId: 'A', expr: 'up' } })).toEqual([]);
  });
});
