// Loads the production bundle the way Grafana's SystemJS does: evaluate dist/module.js with a `define`
// that hands it the shared modules, then look for the exported `plugin`. Run ./build.sh first (test.sh does).
import fs from 'fs';
import path from 'path';
import React from 'react';
import { render, screen } from '@testing-library/react';
import { DataSourcePlugin } from '@grafana/data';
import { DataSourceWithBackend } from '@grafana/runtime';
import { installFakeDataSourceSrv } from './fakeDataSourceSrv';

const MODULE_JS = path.resolve(__dirname, '../dist/module.js');
// What Grafana provides to plugins; anything else in the dependency list would fail to load.
const SHARED = ['react', 'react-dom', 'rxjs', 'lodash', 'moment', '@emotion/css', '@grafana/data', '@grafana/runtime', '@grafana/ui', '@grafana/schema'];

function loadAmd(file: string) {
  let deps: string[] = [];
  let factory: (...mods: unknown[]) => Record<string, unknown> = () => ({});
  const define = (d: string[], f: typeof factory) => {
    deps = d;
    factory = f;
  };
  (define as unknown as { amd: object }).amd = {};
  new Function('define', fs.readFileSync(file, 'utf8'))(define);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exports = factory(...deps.map((d) => require(d)));
  return { deps, exports };
}

describe('dist/module.js', () => {
  it('exists (run ./build.sh)', () => {
    expect(fs.existsSync(MODULE_JS)).toBe(true);
  });

  it('is an AMD module whose dependencies are only modules Grafana shares', () => {
    const { deps } = loadAmd(MODULE_JS);
    expect(deps).toEqual(expect.arrayContaining(['react', '@grafana/data', '@grafana/runtime', '@grafana/ui']));
    expect(deps.filter((d) => !SHARED.includes(d))).toEqual([]);
  });

  it('exports the data source plugin with both editors', () => {
    const { exports } = loadAmd(MODULE_JS);
    const plugin = exports.plugin as DataSourcePlugin<any>;
    expect(plugin).toBeInstanceOf(DataSourcePlugin);
    expect(typeof plugin.components.QueryEditor).toBe('function');
    expect(typeof plugin.components.ConfigEditor).toBe('function');
    const ds = new plugin.DataSourceClass({ id: 1, uid: 'u', type: 'toto-forecast-datasource', name: 'x', jsonData: {}, meta: {} } as any);
    expect(ds).toBeInstanceOf(DataSourceWithBackend);
    expect(ds.getDefaultQuery?.('panel-editor' as any)).toMatchObject({ queryType: 'forecast', source: 'demo', horizon: '1h' });
  });

  it("renders the bundle's config editor with the shared React and @grafana/ui", () => {
    const plugin = loadAmd(MODULE_JS).exports.plugin as DataSourcePlugin<any>;
    const options = { jsonData: { prometheusUrl: 'http://prom:9090' }, secureJsonFields: {} };
    installFakeDataSourceSrv(); // Grafana's data source service: the allowed-targets picker lists data sources
    render(React.createElement(plugin.components.ConfigEditor!, { options, onOptionsChange: () => {} } as any));
    expect(screen.getByLabelText('Prometheus URL')).toHaveValue('http://prom:9090');
  });
});
