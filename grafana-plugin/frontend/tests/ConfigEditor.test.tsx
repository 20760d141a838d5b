import React, { useState } from 'react';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { DataSourceSettings } from '@grafana/data';

import { ConfigEditor } from '../src/components/ConfigEditor';
import { TotoJsonData, TotoSecureJsonData } from '../src/types';
import { installFakeDataSourceSrv } from './fakeDataSourceSrv';

type Options = DataSourceSettings<TotoJsonData, TotoSecureJsonData>;

function renderConfigEditor(jsonData: TotoJsonData, secureJsonFields: Record<string, boolean> = {}) {
  const initial = { id: 1, uid: 'toto-uid', name: 'Toto Forecast', type: 'toto-forecast-datasource', jsonData, secureJsonFields } as unknown as Options;
  const changes: Options[] = [];
  function Harness() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          changes.push(o);
          setOptions(o);
        }}
      />
    );
  }
  render(<Harness />);
  return { last: () => changes[changes.length - 1], changes };
}

beforeEach(() => installFakeDataSourceSrv()); // the allowed-targets picker lists data sources
afterEach(() => jest.restoreAllMocks());

describe('ConfigEditor', () => {
  it('edits the Prometheus connection and basic auth', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderConfigEditor({});

    await user.type(screen.getByLabelText('Prometheus URL'), 'http://prometheus:9090');
    await user.click(screen.getByRole('radio', { name: 'Basic' }));
    await user.type(screen.getByLabelText('Basic auth user'), 'grafana');
    await user.type(screen.getByLabelText('Basic auth password'), 's3cret');
    await user.click(screen.getByLabelText('Skip TLS verify'));
    await user.type(screen.getByLabelText('Timeout (s)'), '12.5{Enter}');

    expect(last().jsonData).toEqual({
      prometheusUrl: 'http://prometheus:9090',
      authType: 'basic',
      basicAuthUser: 'grafana',
      tlsSkipVerify: true,
      timeoutSeconds: 12.5,
    });
    expect(last().secureJsonData).toEqual({ basicAuthPassword: 's3cret' });
  });

  it('shows a stored bearer token as configured and resets it', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderConfigEditor({ prometheusUrl: 'https://mimir', authType: 'bearer' }, { bearerToken: true });

    const token = screen.getByLabelText('Token');
    expect(token).toBeDisabled();
    expect(token).toHaveValue('configured');
    await user.click(screen.getAllByRole('button', { name: 'Reset' })[0]);

    expect(last().secureJsonFields.bearerToken).toBe(false);
    expect(last().secureJsonData).toEqual({ bearerToken: '' });
    await user.type(screen.getByLabelText('Token'), 'abc');
    expect(last().secureJsonData).toEqual({ bearerToken: 'abc' });
  });

  it('sets the model, device, precision and limits; refuses out-of-range numbers', async () => {
    const user = userEvent.setup({ delay: null });
    const { last, changes } = renderConfigEditor({});

    await user.type(screen.getByLabelText('Model'), '/models/toto-2.0');
    await user.click(screen.getByRole('radio', { name: 'CUDA' }));
    await user.click(screen.getByRole('radio', { name: 'bfloat16' }));
    await user.type(screen.getByLabelText('Max series'), '200{Enter}');
    await user.type(screen.getByLabelText('Default context length'), '4096{Enter}');
    await user.type(screen.getByLabelText('Default horizon'), '6h{Enter}');

    expect(last().jsonData).toEqual({
      model: '/models/toto-2.0',
      device: 'cuda',
      dtype: 'bfloat16',
      maxSeries: 200,
      defaultContextLength: 4096,
      defaultHorizon: '6h',
    });

    const before = changes.length;
    await user.type(screen.getByLabelText('Max series'), '000{Enter}'); // 200000 > 10000
    expect(changes.length).toBe(before);
    expect(screen.getByText('Expected a whole number, 1-10000')).toBeInTheDocument();
  });

  it('sets the Grafana API URL and service-account token', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderConfigEditor({});

    expect(screen.getByText('Grafana API (for Grafana data source queries)')).toBeInTheDocument();
    expect(screen.getByLabelText('Grafana URL')).toHaveAttribute('placeholder', "defaults to Grafana's own URL (GF_APP_URL)");
    await user.type(screen.getByLabelText('Grafana URL'), 'http://grafana:3000');
    await user.type(screen.getByLabelText('Service account token'), 'glsa_abc');

    expect(last().jsonData).toEqual({ grafanaUrl: 'http://grafana:3000' });
    expect(last().secureJsonData).toEqual({ grafanaToken: 'glsa_abc' });
  });

  it('lists the data sources alert rules may read: picked to add, removed by name', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderConfigEditor({});
    expect(screen.getByText(/Alert rules run without a signed-in user/)).toHaveTextContent(
      'none yet, so an alert rule on a Grafana data source is refused'
    );

    await user.click(screen.getByText('Add a data source alert rules may read'));
    let menu = await screen.findByLabelText('Select options menu');
    expect(within(menu).queryByText('Toto Forecast')).not.toBeInTheDocument(); // never this plugin
    await user.click(within(menu).getByText('Loki logs'));
    expect(last().jsonData).toEqual({ allowedTargets: ['loki-uid'] });

    await user.click(screen.getByText('Add a data source alert rules may read'));
    menu = await screen.findByLabelText('Select options menu');
    expect(within(menu).queryByText('Loki logs')).not.toBeInTheDocument(); // already allowed
    await user.click(within(menu).getByText('Prom main'));
    expect(last().jsonData).toEqual({ allowedTargets: ['loki-uid', 'prom-uid'] });
    const list = screen.getByRole('list', { name: 'Allowed targets' });
    expect(within(list).getAllByRole('listitem').map((li) => li.textContent)).toEqual(['Loki logs loki-uid', 'Prom main prom-uid']);
    expect(screen.getByText(/Alert rules run without a signed-in user/)).not.toHaveTextContent('none yet');

    await user.click(screen.getByLabelText('Remove Loki logs'));
    expect(last().jsonData).toEqual({ allowedTargets: ['prom-uid'] });
  });

  it('sets remote inference: URL, model, token and TLS; in-process by default', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderConfigEditor({}, { inferenceToken: true });

    expect(screen.getByText('Remote inference (optional)')).toBeInTheDocument();
    expect(screen.getByLabelText('Inference URL')).toHaveValue('');
    expect(screen.getByLabelText('Engine model')).toBeDisabled();
    expect(screen.getByLabelText('Engine token')).toHaveValue('configured');

    await user.type(screen.getByLabelText('Inference URL'), 'grpc://serve:9000');
    await user.type(screen.getByLabelText('Engine model'), 'toto-22m');
    await user.click(screen.getByLabelText('Skip engine TLS verify'));
    await user.type(screen.getByLabelText('Engine CA certificate'), 'PEM');

    expect(last().jsonData).toEqual({ inferenceUrl: 'grpc://serve:9000', inferenceModel: 'toto-22m', inferenceTlsSkipVerify: true });
    expect(last().secureJsonData).toEqual({ inferenceTlsCACert: 'PEM' });
    expect(last().secureJsonFields).toEqual({ inferenceToken: true });
  });
});
