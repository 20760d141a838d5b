// The two editor registries: one entry per source and per query type. The query editor, the config
// editor and the data source iterate these lists and know no source or query type by name, so a new one
// is its module (which registers itself in src/registry.ts, one line) and its schema fragment.
import { ComponentType } from 'react';
import { DataSourcePluginOptionsEditorProps, ScopedVars, TimeRange } from '@grafana/data';

import type { DataSource } from './datasource';
import { TotoJsonData, TotoQuery, TotoSecureJsonData } from './types';

/** What a query part gets: the query, and two ways to change it. */
export interface QueryPartProps {
  query: TotoQuery;
  datasource: DataSource;
  range?: TimeRange;
  /** Apply a change and run the query. Keys set to undefined are removed. */
  update: (patch: Partial<TotoQuery>) => void;
  /** Apply a change without running (for embedded editors, which call onRunQuery themselves). */
  change: (patch: Partial<TotoQuery>) => void;
  onRunQuery: () => void;
}

export type ConfigPartProps = DataSourcePluginOptionsEditorProps<TotoJsonData, TotoSecureJsonData>;

export interface Part {
  /** The query's `source` / `queryType` value. */
  value: string;
  label: string;
  description: string;
  /** Fields of this part under the shared ones; none for parts without settings of their own. */
  QueryPart?: ComponentType<QueryPartProps>;
  /** Set when the part is picked, for keys the query does not already have. */
  defaults?: Partial<TotoQuery>;
  /** The query keys this part owns (checked against query.schema.json by tests/schema.test.ts). */
  queryKeys: readonly string[];
}

export interface SourcePart extends Part {
  /** Its section of the data source settings (connection, credentials), if it has one. */
  ConfigPart?: ComponentType<ConfigPartProps>;
  /** False while the query cannot run yet (no expression, no target data source): not sent, not previewed. */
  isReady?: (query: TotoQuery) => boolean;
  /** Resolve template variables in this source's keys before the query leaves the browser. */
  interpolate?: (query: TotoQuery, scopedVars: ScopedVars) => TotoQuery;
}

export interface QueryTypePart extends Part {
  /** Its result lies after now, so the panel's range must reach into the future (preview says so). */
  drawsFuture?: boolean;
  /** It decides how far it forecasts itself (recorded: its lead times): the editor hides Horizon. */
  ownsHorizon?: boolean;
}

const sources: SourcePart[] = [];
const queryTypes: QueryTypePart[] = [];

function register<T extends Part>(list: T[], part: T): void {
  const at = list.findIndex((p) => p.value === part.value);
  if (at >= 0) {
    list[at] = part;
  } else {
    list.push(part);
  }
}

/** Add (or replace, by value) a source; it appears in the query and config editors from then on. */
export const registerSource = (part: SourcePart) => register(sources, part);
export const registerQueryType = (part: QueryTypePart) => register(queryTypes, part);

export const sourceParts = (): readonly SourcePart[] => sources;
export const queryTypeParts = (): readonly QueryTypePart[] => queryTypes;
export const findSource = (value?: string) => sources.find((p) => p.value === value);
export const findQueryType = (value?: string) => queryTypes.find((p) => p.value === value);
