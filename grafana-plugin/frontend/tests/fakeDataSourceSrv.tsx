// A stand-in for Grafana's data source service: three data sources (Prometheus, Loki and this plugin), and a
// Loki instance whose query editor is a tiny component, to test the embedded target editor.
import React from 'react';
import { DataSourceApi, DataSourceInstanceSettings, QueryEditorProps } from '@grafana/data';
import { DataSourceSrv, setDataSourceSrv } from '@grafana/runtime';
import { DataQuery } from '@grafana/schema';

type LokiQuery = DataQuery & { expr?: string; queryType?: string };

/** The target's editor: shows the query it was given and edits its expr. */
export function TinyLokiEditor({ query, onChange, onRunQuery }: QueryEditorProps<DataSourceApi, LokiQuery>) {
  return (
    <div>
      <pre data-testid="target-query">{JSON.stringify(query)}</pre>
      <input aria-label="LogQL" value={query.expr ?? ''} onChange={(e) => onChange({ ...query, expr: e.currentTarget.value })} />
      <button onClick={onRunQuery}>Run target</button>
    </div>
  );
}

const settings = (uid: string, name: string, type: string) =>
  ({
    uid,
    name,
    type,
    id: uid.length,
    access: 'proxy',
    jsonData: {},
    readOnly: false,
    meta: { id: type, name, type: 'datasource', metrics: true, info: { logos: { small: '', large: '' } } },
  }) as unknown as DataSourceInstanceSettings;

export const DATA_SOURCES = [
  settings('prom-uid', 'Prom main', 'prometheus'),
  settings('loki-uid', 'Loki logs', 'loki'),
  settings('toto-uid', 'Toto Forecast', 'toto-forecast-datasource'),
];

export const loki = {
  name: 'Loki logs',
  uid: 'loki-uid',
  type: 'loki',
  components: { QueryEditor: TinyLokiEditor },
  getDefaultQuery: () => ({ queryType: 'range', expr: '' }),
  interpolateVariablesInQueries: (queries: LokiQuery[]) => queries.map((q) => ({ ...q, expr: q.expr?.replace('$app', 'checkout') })),
} as unknown as DataSourceApi;

const byRef = (ref: unknown) => {
  const uid = typeof ref === 'string' ? ref : (ref as { uid?: string } | null)?.uid;
  return DATA_SOURCES.find((d) => d.uid === uid || d.name === uid);
};

export function installFakeDataSourceSrv() {
  const srv = {
    getList: jest.fn((filters: { filter?: (d: DataSourceInstanceSettings) => boolean } = {}) =>
      DATA_SOURCES.filter((d) => filters.filter?.(d) ?? true)
    ),
    getInstanceSettings: jest.fn(byRef),
    get: jest.fn(async (ref: unknown) => {
      if (byRef(ref)?.uid === 'loki-uid') {
        return loki;
      }
      throw new Error(`no instance for ${JSON.stringify(ref)}`);
    }),
    reload: jest.fn(),
    registerRuntimeDataSource: jest.fn(),
  };
  setDataSourceSrv(srv as unknown as DataSourceSrv);
  return srv;
}
