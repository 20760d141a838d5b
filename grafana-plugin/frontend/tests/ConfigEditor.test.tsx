import React, { useState } from 'react';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { DataSourceSettings } from '@grafana/data';

import { ConfigEditor } from '../src/components/ConfigEditor';
import { TotoJsonData, TotoSecureJsonData } from '../src/types';

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

describe('ConfigEditor', () => {
  it('edits the Prometheus connection and basic auth', async () => {
    const user = userEvent.setup();
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
    const user = userEvent.setup();
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
    const user = userEvent.setup();
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
});
