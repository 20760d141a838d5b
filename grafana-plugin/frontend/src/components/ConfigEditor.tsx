import React from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { FieldSet, InlineField, InlineSwitch, Input, RadioButtonGroup, SecretInput, SecretTextArea } from '@grafana/ui';

import { parseDuration, parseInteger, parseNumber } from '../spans';
import { AuthType, CONTEXT_LENGTH, DEFAULT_MODEL, Device, DType, TotoJsonData, TotoSecureJsonData } from '../types';
import { CommitInput } from './CommitInput';

export type Props = DataSourcePluginOptionsEditorProps<TotoJsonData, TotoSecureJsonData>;
type SecretKey = 'basicAuthPassword' | 'bearerToken' | 'tlsCACert';

const LABEL = 20;
const AUTH_OPTIONS: Array<{ label: string; value: AuthType }> = [
  { label: 'No auth', value: 'none' },
  { label: 'Basic', value: 'basic' },
  { label: 'Bearer token', value: 'bearer' },
];
const DEVICE_OPTIONS: Array<{ label: string; value: Device }> = [
  { label: 'Auto', value: 'auto' },
  { label: 'CPU', value: 'cpu' },
  { label: 'CUDA', value: 'cuda' },
];
const DTYPE_OPTIONS: Array<{ label: string; value: DType }> = [
  { label: 'float32', value: 'float32' },
  { label: 'bfloat16', value: 'bfloat16' },
];

const inRange = (min: number, max: number) => (t: string) => {
  const p = parseNumber(t);
  return p.value !== undefined && (p.value < min || p.value > max) ? { error: `Expected ${min}-${max}` } : p;
};

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jsonData = options.jsonData;
  const secureJsonFields = options.secureJsonFields ?? {};
  const secureJsonData = options.secureJsonData ?? {};
  const authType = jsonData.authType ?? 'none';

  const setJson = (patch: Partial<TotoJsonData>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const setSecret = (key: SecretKey, value: string) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: value } });
  const resetSecret = (key: SecretKey) =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });
  const secretProps = (key: SecretKey, label: string) => ({
    'aria-label': label,
    isConfigured: Boolean(secureJsonFields[key]),
    value: secureJsonData[key] ?? '',
    onReset: () => resetSecret(key),
    onChange: (e: React.FormEvent<HTMLInputElement | HTMLTextAreaElement>) => setSecret(key, e.currentTarget.value),
  });

  return (
    <div data-testid="toto-config-editor">
      <FieldSet label="Prometheus">
        <InlineField label="URL" labelWidth={LABEL} tooltip="Prometheus-compatible HTTP API (Prometheus, Mimir, Thanos, VictoriaMetrics). Needed only for source=Prometheus.">
          <Input
            aria-label="Prometheus URL"
            width={48}
            placeholder="http://prometheus:9090"
            value={jsonData.prometheusUrl ?? ''}
            onChange={(e) => setJson({ prometheusUrl: e.currentTarget.value })}
          />
        </InlineField>
        <InlineField label="Authentication" labelWidth={LABEL}>
          <RadioButtonGroup options={AUTH_OPTIONS} value={authType} onChange={(v) => setJson({ authType: v })} />
        </InlineField>
        {authType === 'basic' && (
          <>
            <InlineField label="User" labelWidth={LABEL}>
              <Input
                aria-label="Basic auth user"
                width={32}
                value={jsonData.basicAuthUser ?? ''}
                onChange={(e) => setJson({ basicAuthUser: e.currentTarget.value })}
              />
            </InlineField>
            <InlineField label="Password" labelWidth={LABEL}>
              <SecretInput width={32} {...secretProps('basicAuthPassword', 'Basic auth password')} />
            </InlineField>
          </>
        )}
        {authType === 'bearer' && (
          <InlineField label="Token" labelWidth={LABEL} tooltip="Sent as Authorization: Bearer <token>.">
            <SecretInput width={48} {...secretProps('bearerToken', 'Token')} />
          </InlineField>
        )}
        <InlineField label="Skip TLS verify" labelWidth={LABEL}>
          <InlineSwitch
            aria-label="Skip TLS verify"
            value={jsonData.tlsSkipVerify ?? false}
            onChange={(e) => setJson({ tlsSkipVerify: e.currentTarget.checked })}
          />
        </InlineField>
        <InlineField label="CA certificate" labelWidth={LABEL} tooltip="PEM; for a server certificate signed by a private CA.">
          <SecretTextArea cols={48} rows={3} placeholder="-----BEGIN CERTIFICATE-----" {...secretProps('tlsCACert', 'CA certificate')} />
        </InlineField>
        <CommitInput
          label="Timeout (s)"
          labelWidth={LABEL}
          placeholder="30"
          value={jsonData.timeoutSeconds}
          parse={inRange(0.1, 600)}
          onCommit={(timeoutSeconds) => setJson({ timeoutSeconds })}
        />
      </FieldSet>

      <FieldSet label="Model">
        <InlineField
          label="Checkpoint"
          labelWidth={LABEL}
          tooltip="A Hugging Face hub id, or a local checkpoint directory on the Grafana server (air-gapped installs). [plugin.toto-forecast-datasource] model in grafana.ini overrides it."
        >
          <Input
            aria-label="Model"
            width={48}
            placeholder={DEFAULT_MODEL}
            value={jsonData.model ?? ''}
            onChange={(e) => setJson({ model: e.currentTarget.value })}
          />
        </InlineField>
        <InlineField label="Device" labelWidth={LABEL}>
          <RadioButtonGroup options={DEVICE_OPTIONS} value={jsonData.device ?? 'auto'} onChange={(device) => setJson({ device })} />
        </InlineField>
        <InlineField label="Precision" labelWidth={LABEL} tooltip="bfloat16 halves memory on GPUs that support it.">
          <RadioButtonGroup options={DTYPE_OPTIONS} value={jsonData.dtype ?? 'float32'} onChange={(dtype) => setJson({ dtype })} />
        </InlineField>
      </FieldSet>

      <FieldSet label="Limits and defaults">
        <CommitInput
          label="Max series"
          labelWidth={LABEL}
          tooltip="Queries returning more series fail with a message instead of loading the GPU."
          placeholder="500"
          value={jsonData.maxSeries}
          parse={(t) => parseInteger(t, 1, 10000)}
          onCommit={(maxSeries) => setJson({ maxSeries })}
        />
        <CommitInput
          label="Default context length"
          labelWidth={LABEL}
          placeholder={String(CONTEXT_LENGTH.default)}
          value={jsonData.defaultContextLength}
          parse={(t) => parseInteger(t, CONTEXT_LENGTH.min, CONTEXT_LENGTH.max)}
          onCommit={(defaultContextLength) => setJson({ defaultContextLength })}
        />
        <CommitInput
          label="Default horizon"
          labelWidth={LABEL}
          tooltip="Horizon of new queries, e.g. 1h."
          placeholder="1h"
          value={jsonData.defaultHorizon}
          parse={parseDuration}
          onCommit={(defaultHorizon) => setJson({ defaultHorizon })}
        />
      </FieldSet>
    </div>
  );
}
