// A page that renders the two editors with Grafana's dark theme and a stubbed backend, for screenshots
// only (screenshot.sh). Not part of the plugin bundle.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { createTheme, dateTime, DataSourceApi, DataSourceInstanceSettings, DataSourceSettings, QueryEditorProps } from '@grafana/data';
import { DataSourceSrv, setDataSourceSrv } from '@grafana/runtime';
import { DataQuery } from '@grafana/schema';
import { InlineField, InlineFieldRow, TextArea, ThemeContext } from '@grafana/ui';

import { ConfigEditor } from '../src/components/ConfigEditor';
import { QueryEditor } from '../src/components/QueryEditor';
import { DataSource } from '../src/datasource';
import { TotoJsonData, TotoQuery, TotoSecureJsonData } from '../src/types';

const theme = createTheme({ colors: { mode: 'dark' } });

const ds = new DataSource({ id: 1, uid: 'toto', type: 'toto-forecast-datasource', name: 'Toto Forecast', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings<TotoJsonData>);
ds.preview = async (q) => ({
  series: 4,
  step: '1m',
  stepMs: 60000,
  historySpan: '1d 10h',
  horizonSteps: 60,
  notices: [],
  summary:
    q.queryType === 'backtest' ? 'Toto beats seasonal-naive by 31 % on this metric: MASE 0.62 vs 0.90 over 8 windows' : undefined,
});
ds.getResource = (async (_path: string, params?: { match?: string }) => ({
  names: ['node_cpu_seconds_total', 'node_load1', 'up'].filter((n) => n.startsWith(params?.match ?? '')),
})) as typeof ds.getResource;

// Grafana's data source service with a Loki data source whose editor is a stand-in (Loki's real editor is
// part of Grafana, not of @grafana/ui), for the "Grafana data source" view.
type LokiQuery = DataQuery & { expr?: string };
function LokiEditor({ query, onChange }: QueryEditorProps<DataSourceApi, LokiQuery>) {
  return (
    <InlineFieldRow>
      <InlineField label="LogQL" labelWidth={10} grow>
        <TextArea rows={2} value={query.expr ?? ''} onChange={(e) => onChange({ ...query, expr: e.currentTarget.value })} />
      </InlineField>
    </InlineFieldRow>
  );
}
const dsSettings = (uid: string, name: string, type: string) =>
  ({ uid, name, type, jsonData: {}, meta: { id: type, name, metrics: true, info: { logos: { small: '', large: '' } } } }) as unknown as DataSourceInstanceSettings;
const list = [dsSettings('loki', 'Loki (prod)', 'loki'), dsSettings('prom', 'Prometheus', 'prometheus'), dsSettings('toto', 'Toto Forecast', 'toto-forecast-datasource')];
const loki = { name: 'Loki (prod)', uid: 'loki', type: 'loki', components: { QueryEditor: LokiEditor } } as unknown as DataSourceApi;
setDataSourceSrv({
  getList: (f: { filter?: (d: DataSourceInstanceSettings) => boolean } = {}) => list.filter((d) => f.filter?.(d) ?? true),
  getInstanceSettings: (ref: unknown) => list.find((d) => d.uid === (typeof ref === 'string' ? ref : (ref as { uid?: string })?.uid)),
  get: async () => loki,
  reload: async () => {},
  registerRuntimeDataSource: () => {},
} as unknown as DataSourceSrv);

const now = Date.now();
const range = { from: dateTime(now - 6 * 3600_000), to: dateTime(now), raw: { from: 'now-6h', to: 'now' } };
const query: TotoQuery = {
  refId: 'A',
  queryType: 'forecast',
  source: 'prometheus',
  expr: 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle", job="$job"}[5m]))',
  legendFormat: '{{instance}}',
  horizon: '1h',
  quantiles: [0.1, 0.5, 0.9],
  includeHistory: true,
};
const grafanaQuery: TotoQuery = {
  refId: 'A',
  queryType: 'backtest',
  source: 'grafana',
  sourceDatasource: { uid: 'loki', type: 'loki' },
  sourceQuery: { refId: 'A', expr: 'sum by (service) (rate({namespace="shop"} |= "error" [5m]))' },
  horizon: '1h',
  backtestWindows: 8,
  quantiles: [0.1, 0.5, 0.9],
  model: 'statistical',
};
const options = {
  id: 1,
  uid: 'toto',
  name: 'Toto Forecast',
  type: 'toto-forecast-datasource',
  jsonData: {
    prometheusUrl: 'http://prometheus:9090',
    authType: 'bearer',
    timeoutSeconds: 30,
    model: 'Datadog/Toto-2.0-22m',
    device: 'auto',
    dtype: 'float32',
    maxSeries: 500,
    inferenceUrl: 'grpc://toto-serve.ml.svc:9000',
    inferenceModel: 'toto',
    allowedTargets: ['loki'],
  },
  secureJsonFields: { bearerToken: true, grafanaToken: true, inferenceToken: true },
  secureJsonData: {},
} as unknown as DataSourceSettings<TotoJsonData, TotoSecureJsonData>;

const TITLES: Record<string, string> = { query: 'Query editor', grafana: 'Query editor: Grafana data source, backtest', config: 'Data source settings' };

function Page() {
  const which = window.location.hash.slice(1) || 'query';
  const [q, setQ] = React.useState(which === 'grafana' ? grafanaQuery : query);
  const [o, setO] = React.useState(options);
  return (
    <ThemeContext.Provider value={theme}>
      <div style={{ padding: 16, background: theme.colors.background.primary, color: theme.colors.text.primary, minHeight: '100vh', fontFamily: theme.typography.fontFamily, fontSize: 14 }}>
        <h3 style={{ marginTop: 0 }}>{TITLES[which]}</h3>
        {which !== 'config' ? (
          <QueryEditor datasource={ds} query={q} range={range} onChange={setQ} onRunQuery={() => {}} />
        ) : (
          <ConfigEditor options={o} onOptionsChange={setO} />
        )}
      </div>
    </ThemeContext.Provider>
  );
}

// The few global rules Grafana's own stylesheet provides and @grafana/ui components rely on.
const reset = document.createElement('style');
reset.textContent = `html { box-sizing: border-box; } *, *::before, *::after { box-sizing: inherit; }
  body { margin: 0; } fieldset { border: 0; margin: 0; padding: 0; min-width: 0; }
  legend { border: 0; padding: 0; } label { display: inline-block; } input, textarea, button { font-family: inherit; }`;
document.head.appendChild(reset);
createRoot(document.getElementById('root')!).render(<Page />);
