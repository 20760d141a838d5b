import React, { useRef, useState } from 'react';
import { ScopedVars, SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import {
  AsyncSelect,
  FieldSet,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
  SecretInput,
  SecretTextArea,
  TextArea,
} from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { configHelpers, LABEL } from '../config/helpers';
import type { DataSource } from '../datasource';
import { ConfigPartProps, QueryPartProps, SourcePart } from '../parts';
import { TotoQuery } from '../types';

export type AuthType = 'none' | 'basic' | 'bearer';

declare module '../types' {
  interface TotoQuery {
    /** PromQL expression. */
    expr?: string;
    /** Series name template such as {{instance}}. */
    legendFormat?: string;
  }
  interface TotoJsonData {
    prometheusUrl?: string;
    authType?: AuthType;
    basicAuthUser?: string;
    tlsSkipVerify?: boolean;
    [httpHeaderName: `httpHeaderName${number}`]: string | undefined;
  }
  interface TotoSecureJsonData {
    basicAuthPassword?: string;
    bearerToken?: string;
    tlsCACert?: string;
    [httpHeaderValue: `httpHeaderValue${number}`]: string | undefined;
  }
}

/** Multi-value variables become a PromQL regex alternation, as in Prometheus' own data source. */
export function promqlFormat(value: string | string[]): string {
  if (!Array.isArray(value)) {
    return value;
  }
  const escaped = value.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

function interpolate(query: TotoQuery, scopedVars: ScopedVars): TotoQuery {
  const templateSrv = getTemplateSrv();
  const out = { ...query };
  if (query.expr) {
    out.expr = templateSrv.replace(query.expr, scopedVars, promqlFormat);
  }
  if (query.legendFormat) {
    // Grafana leaves {{label}} alone; only $variables are replaced.
    out.legendFormat = templateSrv.replace(query.legendFormat, scopedVars);
  }
  return out;
}

/** Metric names from the configured Prometheus (resource route prometheus/metric-names). */
export function metricNames(ds: DataSource, prefix: string): Promise<string[]> {
  return ds.getResource<{ names?: string[] }>('prometheus/metric-names', { match: prefix }).then((r) => r.names ?? []);
}

function PrometheusQueryPart({ query, datasource, update }: QueryPartProps) {
  const [expr, setExpr] = useState(query.expr ?? '');
  const exprRef = useRef<HTMLTextAreaElement>(null);

  const commit = (text: string) => text !== (query.expr ?? '') && update({ expr: text });

  /** Put a metric name at the cursor (or replace an empty query). */
  const insertMetric = (name: string) => {
    const at = exprRef.current?.selectionStart ?? expr.length;
    const text = expr.trim() === '' ? name : expr.slice(0, at) + name + expr.slice(at);
    setExpr(text);
    commit(text);
  };

  return (
    <>
      <InlineFieldRow>
        <InlineField label="PromQL" labelWidth={14} grow tooltip="Forecast counters through rate(). Ctrl+Enter runs.">
          <TextArea
            ref={exprRef}
            aria-label="PromQL"
            rows={2}
            placeholder='rate(http_requests_total{job="api"}[5m])'
            value={expr}
            onChange={(e) => setExpr(e.currentTarget.value)}
            onBlur={() => commit(expr)}
            onKeyDown={(e) => (e.ctrlKey || e.metaKey) && e.key === 'Enter' && commit(expr)}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField label="Metric" labelWidth={14} tooltip="Metric names from the configured Prometheus; picking one inserts it.">
          <AsyncSelect
            aria-label="Metric"
            width={32}
            placeholder="Search metric names"
            defaultOptions
            cacheOptions
            value={null}
            loadOptions={(prefix: string) =>
              metricNames(datasource, prefix).then((names) => names.map((n) => ({ label: n, value: n })))
            }
            onChange={(v: SelectableValue<string>) => v.value && insertMetric(v.value)}
          />
        </InlineField>
        <CommitInput
          label="Legend"
          labelWidth={8}
          width={24}
          tooltip="Series name template such as {{instance}}."
          placeholder="{{instance}}"
          value={query.legendFormat}
          parse={(t) => ({ value: t || undefined })}
          onCommit={(legendFormat) => update({ legendFormat })}
        />
      </InlineFieldRow>
    </>
  );
}

const AUTH_OPTIONS: Array<{ label: string; value: AuthType }> = [
  { label: 'No auth', value: 'none' },
  { label: 'Basic', value: 'basic' },
  { label: 'Bearer token', value: 'bearer' },
];

function PrometheusConfigPart(props: ConfigPartProps) {
  const { jsonData, setJson, secretProps } = configHelpers(props);
  const authType = jsonData.authType ?? 'none';
  return (
    <FieldSet label="Prometheus">
      <InlineField
        label="URL"
        labelWidth={LABEL}
        tooltip="Prometheus-compatible HTTP API (Prometheus, Mimir, Thanos, VictoriaMetrics). Needed only for source=Prometheus."
      >
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
    </FieldSet>
  );
}

export const prometheus: SourcePart = {
  value: 'prometheus',
  label: 'Prometheus',
  description: 'PromQL against the configured Prometheus API',
  QueryPart: PrometheusQueryPart,
  ConfigPart: PrometheusConfigPart,
  queryKeys: ['expr', 'legendFormat'],
  isReady: (query) => Boolean(query.expr?.trim()),
  interpolate,
};
