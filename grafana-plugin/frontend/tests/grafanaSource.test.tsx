import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { setTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DataSource } from '../src/datasource';
import { forgetLoadedTargets } from '../src/sources/grafana';
import { DEFAULT_QUERY, TotoQuery } from '../src/types';
import { installFakeDataSourceSrv } from './fakeDataSourceSrv';
import { makeDataSource, PREVIEW, renderQueryEditor } from './helpers';
import { schemaErrors } from './schema';

let preview: jest.SpyInstance;
let srv: ReturnType<typeof installFakeDataSourceSrv>;

beforeEach(() => {
  srv = installFakeDataSourceSrv();
  preview = jest.spyOn(DataSource.prototype, 'preview').mockResolvedValue({ ...PREVIEW, series: 2 });
});
afterEach(() => jest.restoreAllMocks());

const LOKI_QUERY: Partial<TotoQuery> = {
  ...DEFAULT_QUERY,
  source: 'grafana',
  sourceDatasource: { uid: 'loki-uid', type: 'loki' },
  sourceQuery: { refId: 'A', queryType: 'range', expr: 'sum(rate({app="$app"}[5m]))' },
};

describe('source "Grafana data source"', () => {
  it('offers metrics data sources except this plugin, and embeds the picked one\'s editor with its default query', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: 'Grafana data source' }));
    expect(last()).toMatchObject({ source: 'grafana' });
    await user.click(screen.getByLabelText('Select a data source'));
    const menu = await screen.findByLabelText('Select options menu');
    expect(within(menu).getByText('Prom main')).toBeInTheDocument();
    expect(within(menu).queryByText('Toto Forecast')).not.toBeInTheDocument();
    expect(srv.getList).toHaveBeenCalledWith(expect.objectContaining({ metrics: true }));

    await user.click(within(menu).getByText('Loki logs'));
    // The target's own default query becomes sourceQuery, and its editor receives it.
    await waitFor(() => expect(last().sourceQuery).toEqual({ refId: 'A', queryType: 'range', expr: '' }));
    expect(last().sourceDatasource).toEqual({ uid: 'loki-uid', type: 'loki' });
    expect(JSON.parse(screen.getByTestId('target-query').textContent!)).toEqual({ refId: 'A', queryType: 'range', expr: '' });
    for (const q of emitted) {
      expect(schemaErrors(q)).toEqual([]);
    }
  });

  it("passes sourceQuery to the target's editor and takes its changes back", async () => {
    const user = userEvent.setup({ delay: null });
    const { last, onRunQuery, emitted } = renderQueryEditor(LOKI_QUERY);

    const box = await screen.findByLabelText('LogQL');
    expect(box).toHaveValue('sum(rate({app="$app"}[5m]))');
    expect(screen.getByText('Loki logs query')).toBeInTheDocument();
    await user.clear(box);
    await user.type(box, 'count_over_time({{app="x"}[[1m])');
    expect(last().sourceQuery).toEqual({ refId: 'A', queryType: 'range', expr: 'count_over_time({app="x"}[1m])' });
    expect(last()).toMatchObject({ source: 'grafana', sourceDatasource: { uid: 'loki-uid', type: 'loki' } });
    // Typing in the embedded editor does not run the query; its own run button does.
    expect(onRunQuery).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Run target' }));
    expect(onRunQuery).toHaveBeenCalled();
    for (const q of emitted) {
      expect(schemaErrors(q)).toEqual([]);
    }
  });

  it('previews through the preview route once a target and its query are set', async () => {
    renderQueryEditor(LOKI_QUERY);
    expect(await screen.findByLabelText('Preview')).toHaveTextContent('2 series · step 1m');
    expect(preview).toHaveBeenCalledWith(expect.objectContaining({ source: 'grafana', sourceQuery: LOKI_QUERY.sourceQuery }), expect.anything(), undefined);
  });

  it('is not run or previewed without a target', () => {
    const ds = makeDataSource();
    expect(ds.filterQuery({ refId: 'A', source: 'grafana' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', ...LOKI_QUERY })).toBe(true);
    renderQueryEditor({ ...DEFAULT_QUERY, source: 'grafana' });
    expect(preview).not.toHaveBeenCalled();
  });

  it("resolves template variables in sourceQuery by the target's own rules once it is loaded", async () => {
    setTemplateSrv({ replace: (s: string) => s.replace('$app', 'generic') } as unknown as TemplateSrv);
    forgetLoadedTargets();
    const ds = makeDataSource();
    const query = { refId: 'A', ...LOKI_QUERY } as TotoQuery;
    // Not loaded yet: Grafana's plain replacement in every string (and the target is loaded for next time).
    expect(ds.applyTemplateVariables(query, {}).sourceQuery?.expr).toBe('sum(rate({app="generic"}[5m]))');
    await waitFor(() => expect(srv.get).toHaveBeenCalled());
    await Promise.resolve();
    expect(ds.applyTemplateVariables(query, {}).sourceQuery?.expr).toBe('sum(rate({app="checkout"}[5m]))');
    expect(query.sourceQuery?.expr).toBe('sum(rate({app="$app"}[5m]))');
  });
});
