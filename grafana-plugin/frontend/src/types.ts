// The query model and data-source settings, as the backend reads them: the keys every query has.
//
// server/toto_datasource/query.schema.json is the single source of truth for the query. Each source and
// query type adds its own keys from its own module (src/sources/*, src/querytypes/*) by augmenting
// TotoQuery / TotoJsonData / TotoSecureJsonData below, and lists them in its registry entry;
// tests/schema.test.ts fails when the registry's keys and enums differ from the schema, and the editor
// tests validate every query the editors emit against that same file.
import { DataQuery, DataSourceJsonData } from '@grafana/schema';

export const QUANTILE_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] as const;
export const MODELS = ['toto', 'seasonal-naive', 'statistical'] as const;

export type Quantile = (typeof QUANTILE_LEVELS)[number];
export type ModelName = (typeof MODELS)[number];
/** A registered query type's value ("forecast", "threshold", ...); see src/registry.ts. */
export type QueryType = string;
/** A registered source's value ("demo", "prometheus", ...); see src/registry.ts. */
export type Source = string;

/** A duration such as "2h" or a number of steps. */
export type Span = string | number;

/** The query. Sources and query types add their keys with `declare module '../types'`. */
export interface TotoQuery extends DataQuery {
  queryType?: QueryType;
  source?: Source;
  horizon?: Span;
  step?: string;
  contextLength?: number;
  quantiles?: Quantile[];
  includeHistory?: boolean;
  model?: ModelName;
  joint?: boolean;
  /** Set only on annotation queries (src/annotations.ts): answer with time/timeEnd/text/tags frames. */
  annotation?: boolean;
}

/** The keys above that belong to this plugin (queryType is DataQuery's, but its values are ours). */
export const COMMON_QUERY_KEYS = [
  'queryType',
  'source',
  'horizon',
  'step',
  'contextLength',
  'quantiles',
  'includeHistory',
  'model',
  'joint',
  'annotation',
] as const satisfies ReadonlyArray<Exclude<keyof TotoQuery, keyof DataQuery> | 'queryType'>;

export const DEFAULT_QUERY: Partial<TotoQuery> = {
  queryType: 'forecast',
  source: 'demo',
  scenario: 'postgres-load',
  horizon: '1h',
  quantiles: [0.1, 0.5, 0.9],
  includeHistory: true,
};

/** The schema's duration pattern (horizon, step, anomalyWindow). */
export const DURATION_RE = /^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*$/;
export const CONTEXT_LENGTH = { min: 32, max: 8192, default: 2048 };
export const MAX_HORIZON_STEPS = 8192;

export type Device = 'auto' | 'cpu' | 'cuda';
export type DType = 'float32' | 'bfloat16';

/** jsonData, as the backend's settings read it. Sources and config sections add their keys. */
export interface TotoJsonData extends DataSourceJsonData {
  timeoutSeconds?: number;
  maxSeries?: number;
  defaultContextLength?: number;
  defaultHorizon?: string;
  /** Hugging Face hub id such as "Datadog/Toto-2.0-22m", or a local checkpoint directory. */
  model?: string;
  device?: Device;
  dtype?: DType;
}

/** secureJsonData: write-only; Grafana returns only secureJsonFields (which keys are set). */
export interface TotoSecureJsonData {}

export const DEFAULT_MODEL = 'Datadog/Toto-2.0-22m';
/** This plugin's id: a Grafana-data-source query must not target it (no recursion). */
export const PLUGIN_TYPE = 'toto-forecast-datasource';

/** POST resources/preview answer. */
export interface PreviewResult {
  series: number;
  step: string;
  stepMs: number;
  historySpan: string;
  historyStart?: number;
  historyEnd?: number;
  horizonSteps?: number;
  notices?: string[];
  /** One line that matters for this query type, e.g. a backtest's verdict; shown as is. */
  summary?: string;
}
