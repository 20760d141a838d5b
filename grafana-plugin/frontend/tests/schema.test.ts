import { DEFAULT_QUERY, DIRECTIONS, MODELS, QUANTILE_LEVELS, QUERY_KEYS, QUERY_TYPES, SCENARIOS, SOURCES } from '../src/types';
import { schema, schemaErrors } from './schema';

// Keys of Grafana's own that the schema also lists.
const GRAFANA_KEYS = ['refId', 'hide', 'intervalMs', 'maxDataPoints'];

describe('src/types.ts matches query.schema.json', () => {
  it('has the same query keys', () => {
    expect([...QUERY_KEYS, ...GRAFANA_KEYS].sort()).toEqual(Object.keys(schema.properties).sort());
  });

  it.each([
    ['queryType', ['', ...QUERY_TYPES]],
    ['source', SOURCES],
    ['scenario', SCENARIOS],
    ['model', MODELS],
    ['direction', DIRECTIONS],
    ['thresholdQuantile', QUANTILE_LEVELS],
  ])('has the same %s values', (key, values) => {
    expect([...values]).toEqual(schema.properties[key].enum);
  });

  it('has the same quantile levels', () => {
    expect([...QUANTILE_LEVELS]).toEqual(schema.properties.quantiles.items.enum);
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
  });
});
