// The query model and data-source settings, as the backend reads them.
//
// server/toto_datasource/query.schema.json is the single source of truth for the query. The enums and
// keys below restate it for TypeScript; tests/schema.test.ts fails when the two differ, and the editor
// tests validate every query the editors emit against that same file.
import { DataQuery, DataSourceJsonData } from '@grafana/schema';

export const QUERY_TYPES = ['forecast', 'threshold', 'anomaly'] as const;
export const SOURCES = ['demo', 'inline', 'prometheus'] as const;
export const SCENARIOS = ['postgres-load', 'cpu', 'memory-leak', 'disk-fill', 'latency-p99', 'all'] as const;
export const QUANTILE_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] as const;
export const MODELS = ['toto', 'seasonal-naive'] as const;
export const DIRECTIONS = ['above', 'below'] as const;

export type QueryType = (typeof QUERY_TYPES)[number];
export type Source = (typeof SOURCES)[number];
export type Scenario = (typeof SCENARIOS)[number];
export type Quantile = (typeof QUANTILE_LEVELS)[number];
export type ModelName = (typeof MODELS)[number];
export type Direction = (typeof DIRECTIONS)[number];

/** One inline history series (source=inline). */
export interface InlineSeries {
  name?: string;
  labels?: Record<string, string>;
  /** Epoch milliseconds, same length as values. */
  timestamps: number[];
  values: Array<number | null>;
}

/** A duration such as "2h" or a number of steps. */
export type Span = string | number;

export interface TotoQuery extends DataQuery {
  queryType?: QueryType;
  source?: Source;
  scenario?: Scenario;
  series?: InlineSeries[];
  expr?: string;
  legendFormat?: string;
  horizon?: Span;
  step?: string;
  contextLength?: number;
  quantiles?: Quantile[];
  includeHistory?: boolean;
  model?: ModelName;
  joint?: boolean;
  threshold?: number;
  direction?: Direction;
  thresholdQuantile?: Quantile;
  anomalyWindow?: Span;
}

/** Every key this plugin adds to a query. The type makes it exhaustive; the schema test makes it exact. */
type OwnKey = Exclude<keyof TotoQuery, keyof DataQuery> | 'queryType';
const OWN_KEYS: Record<OwnKey, true> = {
  queryType: true,
  source: true,
  scenario: true,
  series: true,
  expr: true,
  legendFormat: true,
  horizon: true,
  step: true,
  contextLength: true,
  quantiles: true,
  includeHistory: true,
  model: true,
  joint: true,
  threshold: true,
  direction: true,
  thresholdQuantile: true,
  anomalyWindow: true,
};
export const QUERY_KEYS = Object.keys(OWN_KEYS) as OwnKey[];

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
export const MAX_ANOMALY_WINDOW_STEPS = 4096;

export type AuthType = 'none' | 'basic' | 'bearer';
export type Device = 'auto' | 'cpu' | 'cuda';
export type DType = 'float32' | 'bfloat16';

/** jsonData, as server/toto_datasource/settings.py reads it. */
export interface TotoJsonData extends DataSourceJsonData {
  prometheusUrl?: string;
  authType?: AuthType;
  basicAuthUser?: string;
  tlsSkipVerify?: boolean;
  timeoutSeconds?: number;
  maxSeries?: number;
  defaultContextLength?: number;
  defaultHorizon?: string;
  /** Hugging Face hub id such as "Datadog/Toto-2.0-22m", or a local checkpoint directory. */
  model?: string;
  device?: Device;
  dtype?: DType;
  [httpHeaderName: `httpHeaderName${number}`]: string | undefined;
}

/** secureJsonData: write-only; Grafana returns only secureJsonFields (which keys are set). */
export interface TotoSecureJsonData {
  basicAuthPassword?: string;
  bearerToken?: string;
  tlsCACert?: string;
  [httpHeaderValue: `httpHeaderValue${number}`]: string | undefined;
}

export const DEFAULT_MODEL = 'Datadog/Toto-2.0-22m';

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
}

/** GET resources/models answer. */
export interface ModelInfo {
  id: string;
  loaded: boolean;
}
