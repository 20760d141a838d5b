import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { locationService } from '@grafana/runtime';

import { DataSource } from '../src/datasource';
import { DEFAULT_QUERY, TotoQuery } from '../src/types';
import { makeRange, PREVIEW, renderQueryEditor } from './helpers';
import { schemaErrors } from './schema';

let preview: jest.SpyInstance;
let metricNames: jest.SpyInstance;

beforeEach(() => {
  preview = jest.spyOn(DataSource.prototype, 'preview').mockResolvedValue(PREVIEW);
  metricNames = jest
    .spyOn(DataSource.prototype, 'getResource')
    .mockImplementation(async (_path: string, params?: { match?: string }) => ({
      names: ['node_cpu_seconds_total', 'up'].filter((n) => n.startsWith(params?.match ?? '')),
    }));
});
afterEach(() => jest.restoreAllMocks());

/** Every query the editor emitted must pass the backend's schema. */
function expectAllValid(emitted: TotoQuery[]) {
  expect(emitted.length).toBeGreaterThan(0);
  for (const q of emitted) {
    expect(schemaErrors(q)).toEqual([]);
  }
}

describe('QueryEditor', () => {
  it('shows the default query, the preview line and the future-range hint', async () => {
    const partial = jest.spyOn(locationService, 'partial').mockImplementation(() => {});
    renderQueryEditor(DEFAULT_QUERY);

    expect(screen.getByRole('radio', { name: 'Demo' })).toBeChecked();
    expect(screen.getByRole('radio', { name: 'Forecast' })).toBeChecked();
    expect(screen.getByLabelText('Horizon')).toHaveValue('1h');
    expect(screen.getByRole('radio', { name: '10–90' })).toBeChecked();

    expect(await screen.findByLabelText('Preview')).toHaveTextContent('3 series · step 1m · history 1d 10h · forecast 60 steps');
    expect(preview).toHaveBeenCalledWith(expect.objectContaining({ source: 'demo', horizon: '1h' }), expect.anything(), undefined);

    await userEvent.click(screen.getByRole('button', { name: /Extend to now\+1h/ }));
    expect(partial).toHaveBeenCalledWith({ to: 'now+1h' }, true);
  });

  it('says nothing about extending when the range already ends in the future', async () => {
    renderQueryEditor(DEFAULT_QUERY, { range: makeRange(3600_000) });
    await screen.findByLabelText('Preview');
    expect(screen.queryByRole('button', { name: /Extend to/ })).not.toBeInTheDocument();
    expect(screen.getByText(/drawn from now to the end of the time range/)).toBeInTheDocument();
  });

  it('builds a Prometheus query with a suggested metric name and a legend', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last, onRunQuery } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: 'Prometheus' }));
    await user.click(screen.getByLabelText('Metric'));
    await user.type(screen.getByLabelText('Metric'), 'node');
    await user.click(await screen.findByText('node_cpu_seconds_total'));
    expect(metricNames).toHaveBeenCalledWith('prometheus/metric-names', { match: 'node' });
    expect(last().expr).toBe('node_cpu_seconds_total');

    const expr = screen.getByLabelText('PromQL');
    await user.clear(expr);
    await user.type(expr, 'rate(node_cpu_seconds_total{{instance="$instance"}[[5m])');
    await user.tab();
    await user.type(screen.getByLabelText('Legend'), '{{{{instance}}{Enter}');

    expect(last()).toMatchObject({
      source: 'prometheus',
      expr: 'rate(node_cpu_seconds_total{instance="$instance"}[5m])',
      legendFormat: '{{instance}}',
    });
    expect(onRunQuery).toHaveBeenCalled();
    expectAllValid(emitted);
  });

  it('emits only valid horizons: presets, durations, steps, or none', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);
    const horizon = screen.getByLabelText('Horizon');

    await user.click(screen.getByRole('radio', { name: '6h' }));
    expect(last().horizon).toBe('6h');
    expect(horizon).toHaveValue('6h');

    await user.clear(horizon);
    await user.type(horizon, '90{Enter}');
    expect(last().horizon).toBe(90);

    const before = emitted.length;
    await user.clear(horizon);
    await user.type(horizon, 'soon{Enter}');
    expect(emitted.length).toBe(before);
    expect(screen.getByText(/Expected a duration/)).toBeInTheDocument();

    await user.clear(horizon);
    await user.tab();
    expect(last()).not.toHaveProperty('horizon');
    expectAllValid(emitted);
  });

  it('sets band, step, context length, model, history and joint', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: '20–80' }));
    await user.type(screen.getByLabelText('Step'), '5m{Enter}');
    await user.type(screen.getByLabelText('Context length'), '512{Enter}');
    await user.click(screen.getByRole('radio', { name: 'Seasonal naive' }));
    await user.click(screen.getByLabelText('Include history'));
    await user.click(screen.getByLabelText('Joint'));

    expect(last()).toMatchObject({
      quantiles: [0.2, 0.5, 0.8],
      step: '5m',
      contextLength: 512,
      model: 'seasonal-naive',
      includeHistory: false,
      joint: true,
    });

    const before = emitted.length;
    await user.type(screen.getByLabelText('Context length'), '0{Enter}'); // 5120 is fine; 51200 is not
    await user.type(screen.getByLabelText('Context length'), '0{Enter}');
    expect(last().contextLength).toBe(5120);
    expect(emitted.length).toBe(before + 1);
    expectAllValid(emitted);
  });

  it('builds a threshold query for alert rules', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: 'Threshold' }));
    await user.type(screen.getByLabelText('Threshold value'), '90{Enter}');
    await user.click(screen.getByRole('radio', { name: 'Below' }));
    await user.click(screen.getByLabelText('Watched quantile'));
    await user.click(await screen.findByText('p20'));

    expect(last()).toMatchObject({ queryType: 'threshold', threshold: 90, direction: 'below', thresholdQuantile: 0.2 });
    expect(screen.queryByRole('button', { name: /Extend to/ })).not.toBeInTheDocument();
    expectAllValid(emitted);
  });

  it('builds an anomaly query', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);
    await user.click(screen.getByRole('radio', { name: 'Anomaly' }));
    await user.type(screen.getByLabelText('Window'), '2h{Enter}');
    expect(last()).toMatchObject({ queryType: 'anomaly', anomalyWindow: '2h' });
    expectAllValid(emitted);
  });

  it('builds a recorded query for recording rules: lead times instead of a horizon', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: 'Recorded' }));
    expect(last()).toMatchObject({ queryType: 'recorded', leadTime: '1h' });
    expect(screen.queryByLabelText('Horizon')).not.toBeInTheDocument();

    const lead = screen.getByLabelText('Lead time');
    await user.clear(lead);
    await user.type(lead, '15m, 1h{Enter}');
    expect(last().leadTime).toEqual(['15m', '1h']);

    const before = emitted.length;
    await user.clear(lead);
    await user.type(lead, '15m, 15m{Enter}');
    expect(emitted.length).toBe(before);
    expect(screen.getByText('Give each lead time once')).toBeInTheDocument();
    await user.clear(lead);
    await user.type(lead, 'soon{Enter}');
    expect(emitted.length).toBe(before);
    expect(screen.getByText('Expected durations such as 15m, 1h')).toBeInTheDocument();

    await user.clear(lead);
    await user.type(lead, '30m{Enter}');
    expect(last().leadTime).toBe('30m');
    expectAllValid(emitted);
  });

  it('builds a backtest query and shows the verdict line the preview carries', async () => {
    const verdict = 'Toto beats seasonal-naive by 31 % on this metric: MASE 0.62 vs 0.90 over 8 windows';
    preview.mockResolvedValue({ ...PREVIEW, summary: verdict });
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);

    await user.click(screen.getByRole('radio', { name: 'Backtest' }));
    expect(last()).toMatchObject({ queryType: 'backtest', backtestWindows: 8 });
    const windows = screen.getByLabelText('Windows');
    await user.clear(windows);
    await user.type(windows, '12{Enter}');
    expect(last().backtestWindows).toBe(12);
    const before = emitted.length;
    await user.clear(windows);
    await user.type(windows, '33{Enter}');
    expect(emitted.length).toBe(before);
    expect(screen.getByText('Expected a whole number, 1-32')).toBeInTheDocument();

    expect(await screen.findByLabelText('Preview summary')).toHaveTextContent(verdict);
    // A backtest scores the past: no hint about extending the range into the future.
    expect(screen.queryByRole('button', { name: /Extend to/ })).not.toBeInTheDocument();
    expectAllValid(emitted);
  });

  it('offers the statistical fallback beside Toto and seasonal naive', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor(DEFAULT_QUERY);
    await user.click(screen.getByRole('radio', { name: 'Statistical' }));
    expect(last().model).toBe('statistical');
    expectAllValid(emitted);
  });

  it('takes inline series as JSON and refuses malformed JSON', async () => {
    const user = userEvent.setup({ delay: null });
    const { emitted, last } = renderQueryEditor({ ...DEFAULT_QUERY, source: 'inline' });
    const box = screen.getByLabelText('Series JSON');

    await user.click(box);
    await user.paste('[{"name": "cpu", "timestamps": [1, 2]');
    await user.tab();
    expect(screen.getByText(/Not JSON/)).toBeInTheDocument();
    expect(emitted).toHaveLength(0);

    await user.clear(box);
    await user.paste('[{"name": "cpu", "labels": {"host": "a"}, "timestamps": [1000, 2000], "values": [0.5, null]}]');
    await user.tab();
    expect(last().series).toEqual([{ name: 'cpu', labels: { host: 'a' }, timestamps: [1000, 2000], values: [0.5, null] }]);
    expectAllValid(emitted);
  });

  it("shows the backend's preview error", async () => {
    preview.mockRejectedValue({ status: 400, data: { error: 'expr: parse error at char 5' } });
    renderQueryEditor({ ...DEFAULT_QUERY, source: 'prometheus', expr: 'rate(' });
    await waitFor(() => expect(screen.getByLabelText('Preview error')).toHaveTextContent('expr: parse error at char 5'));
  });
});
