import React, { useRef, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { AsyncSelect, InlineField, InlineFieldRow, InlineSwitch, RadioButtonGroup, Select, TextArea } from '@grafana/ui';

import { DataSource } from '../datasource';
import { parseDuration, parseInteger, parseNumber, parseSpan } from '../spans';
import {
  CONTEXT_LENGTH,
  InlineSeries,
  MAX_ANOMALY_WINDOW_STEPS,
  MAX_HORIZON_STEPS,
  Quantile,
  QUANTILE_LEVELS,
  SCENARIOS,
  TotoJsonData,
  TotoQuery,
} from '../types';
import { CommitInput } from './CommitInput';
import { QueryPreview } from './QueryPreview';

export type Props = QueryEditorProps<DataSource, TotoQuery, TotoJsonData>;

const LABEL = 14;

const SOURCE_OPTIONS: Array<SelectableValue<TotoQuery['source']>> = [
  { label: 'Prometheus', value: 'prometheus', description: 'PromQL against the configured Prometheus API' },
  { label: 'Demo', value: 'demo', description: 'Built-in synthetic telemetry' },
  { label: 'Inline', value: 'inline', description: 'Series given as JSON in the query' },
];
const OUTPUT_OPTIONS: Array<SelectableValue<TotoQuery['queryType']>> = [
  { label: 'Forecast', value: 'forecast', description: 'Median and quantile band' },
  { label: 'Threshold', value: 'threshold', description: 'Time to breach, probability, peak (for alert rules)' },
  { label: 'Anomaly', value: 'anomaly', description: 'Actual vs rolling forecast band' },
];
const HORIZON_PRESETS = ['15m', '1h', '6h', '1d', '7d'].map((h) => ({ label: h, value: h }));
const BANDS: Array<{ label: string; quantiles: Quantile[] }> = [
  { label: '10–90', quantiles: [0.1, 0.5, 0.9] },
  { label: '20–80', quantiles: [0.2, 0.5, 0.8] },
  { label: '30–70', quantiles: [0.3, 0.5, 0.7] },
  { label: '10–90 + 20–80', quantiles: [0.1, 0.2, 0.5, 0.8, 0.9] },
  { label: 'Median', quantiles: [0.5] },
];
const MODEL_OPTIONS: Array<SelectableValue<TotoQuery['model']>> = [
  { label: 'Toto', value: 'toto' },
  { label: 'Seasonal naive', value: 'seasonal-naive', description: 'Statistical baseline, no model needed' },
];
const DIRECTION_OPTIONS: Array<SelectableValue<TotoQuery['direction']>> = [
  { label: 'Above', value: 'above' },
  { label: 'Below', value: 'below' },
];
const QUANTILE_OPTIONS: Array<SelectableValue<Quantile>> = QUANTILE_LEVELS.map((q) => ({
  label: `p${Math.round(q * 100)}`,
  value: q,
}));

const bandKey = (qs: readonly number[]) => [...qs].sort((a, b) => a - b).join(',');

export function QueryEditor({ query, onChange, onRunQuery, datasource, range, data }: Props) {
  const source = query.source ?? 'demo';
  const queryType = query.queryType || 'forecast';

  /** Apply a change; keys set to undefined are removed so the query JSON holds only meaningful values. */
  const update = (patch: Partial<TotoQuery>) => {
    const next: TotoQuery = { ...query, ...patch };
    for (const key of Object.keys(patch) as Array<keyof TotoQuery>) {
      if (next[key] === undefined) {
        delete next[key];
      }
    }
    onChange(next);
    onRunQuery();
  };

  const band = bandKey(query.quantiles ?? [0.1, 0.5, 0.9]);
  const bandOptions = BANDS.map((b) => ({ label: b.label, value: bandKey(b.quantiles) }));
  if (!bandOptions.some((o) => o.value === band)) {
    bandOptions.push({ label: `Custom (${band})`, value: band });
  }

  return (
    <div data-testid="toto-query-editor">
      <InlineFieldRow>
        <InlineField label="Source" labelWidth={LABEL}>
          <RadioButtonGroup options={SOURCE_OPTIONS} value={source} onChange={(v) => update({ source: v })} />
        </InlineField>
        <InlineField label="Output" labelWidth={LABEL}>
          <RadioButtonGroup options={OUTPUT_OPTIONS} value={queryType} onChange={(v) => update({ queryType: v })} />
        </InlineField>
      </InlineFieldRow>

      {source === 'prometheus' && <PrometheusFields query={query} datasource={datasource} update={update} />}
      {source === 'demo' && (
        <InlineFieldRow>
          <InlineField label="Scenario" labelWidth={LABEL}>
            <Select
              aria-label="Scenario"
              width={24}
              options={SCENARIOS.map((s) => ({ label: s, value: s }))}
              value={query.scenario ?? 'postgres-load'}
              onChange={(v) => update({ scenario: v.value })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {source === 'inline' && <InlineSeriesField series={query.series} onCommit={(series) => update({ series })} />}

      <InlineFieldRow>
        <CommitInput
          label="Horizon"
          tooltip="How far to forecast: a duration (2h) or a number of steps. Empty: up to the end of the time range when it lies in the future."
          placeholder="to range end"
          value={query.horizon}
          parse={(t) => parseSpan(t, MAX_HORIZON_STEPS)}
          onCommit={(horizon) => update({ horizon })}
        />
        <RadioButtonGroup
          size="sm"
          options={HORIZON_PRESETS}
          value={typeof query.horizon === 'string' ? query.horizon.trim() : undefined}
          onChange={(horizon) => update({ horizon })}
        />
      </InlineFieldRow>
      <InlineFieldRow>
        <CommitInput
          label="Step"
          tooltip="Resolution of history and forecast, e.g. 1m. Empty: from the panel interval and the horizon."
          placeholder="auto"
          value={query.step}
          parse={parseDuration}
          onCommit={(step) => update({ step })}
        />
        <CommitInput
          label="Context length"
          tooltip={`History points fed to the model (${CONTEXT_LENGTH.min}-${CONTEXT_LENGTH.max}).`}
          placeholder={String(datasource.jsonData.defaultContextLength ?? CONTEXT_LENGTH.default)}
          value={query.contextLength}
          parse={(t) => parseInteger(t, CONTEXT_LENGTH.min, CONTEXT_LENGTH.max)}
          onCommit={(contextLength) => update({ contextLength })}
        />
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField label="Band" labelWidth={LABEL} tooltip="Quantiles drawn around the median, in percent.">
          <RadioButtonGroup
            options={bandOptions}
            value={band}
            onChange={(key) => update({ quantiles: key.split(',').map(Number) as Quantile[] })}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField label="Model" labelWidth={LABEL}>
          <RadioButtonGroup options={MODEL_OPTIONS} value={query.model ?? 'toto'} onChange={(model) => update({ model })} />
        </InlineField>
        <InlineField label="Include history" tooltip="Also return the fetched history as its own series.">
          <InlineSwitch
            aria-label="Include history"
            value={query.includeHistory ?? true}
            onChange={(e) => update({ includeHistory: e.currentTarget.checked })}
          />
        </InlineField>
        <InlineField label="Joint" tooltip="Forecast all series together so the model can use their correlation.">
          <InlineSwitch
            aria-label="Joint"
            value={query.joint ?? false}
            onChange={(e) => update({ joint: e.currentTarget.checked })}
          />
        </InlineField>
      </InlineFieldRow>

      {queryType === 'threshold' && (
        <InlineFieldRow>
          <CommitInput
            label="Threshold value"
            value={query.threshold}
            placeholder="e.g. 90"
            parse={parseNumber}
            onCommit={(threshold) => update({ threshold })}
          />
          <InlineField label="Breach when">
            <RadioButtonGroup
              options={DIRECTION_OPTIONS}
              value={query.direction ?? 'above'}
              onChange={(direction) => update({ direction })}
            />
          </InlineField>
          <InlineField label="Watch" tooltip="Quantile watched for the breach. Default: p90 for above, p10 for below.">
            <Select
              aria-label="Watched quantile"
              width={12}
              isClearable
              placeholder="auto"
              options={QUANTILE_OPTIONS}
              value={query.thresholdQuantile ?? null}
              onChange={(v) => update({ thresholdQuantile: v?.value })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {queryType === 'anomaly' && (
        <InlineFieldRow>
          <CommitInput
            label="Window"
            tooltip="Length of each rolling forecast window: a duration or a number of steps (default 64 steps)."
            placeholder="64"
            value={query.anomalyWindow}
            parse={(t) => parseSpan(t, MAX_ANOMALY_WINDOW_STEPS)}
            onCommit={(anomalyWindow) => update({ anomalyWindow })}
          />
        </InlineFieldRow>
      )}

      <QueryPreview datasource={datasource} query={query} range={range} intervalMs={data?.request?.intervalMs} />
    </div>
  );
}

interface SectionProps {
  query: TotoQuery;
  datasource: DataSource;
  update: (patch: Partial<TotoQuery>) => void;
}

function PrometheusFields({ query, datasource, update }: SectionProps) {
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
        <InlineField label="PromQL" labelWidth={LABEL} grow tooltip="Forecast counters through rate(). Ctrl+Enter runs.">
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
        <InlineField label="Metric" labelWidth={LABEL} tooltip="Metric names from the configured Prometheus; picking one inserts it.">
          <AsyncSelect
            aria-label="Metric"
            width={32}
            placeholder="Search metric names"
            defaultOptions
            cacheOptions
            value={null}
            loadOptions={(prefix: string) =>
              datasource.metricNames(prefix).then((names) => names.map((n) => ({ label: n, value: n })))
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

function parseSeries(text: string): { value?: InlineSeries[]; error?: string } {
  if (text.trim() === '') {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { error: `Not JSON: ${(e as Error).message}` };
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const bad = list.findIndex(
    (s) =>
      typeof s !== 'object' || s === null || !Array.isArray(s.timestamps) || !Array.isArray(s.values) ||
      Object.keys(s).some((k) => !['name', 'labels', 'timestamps', 'values'].includes(k))
  );
  return bad < 0 ? { value: list } : { error: `Series ${bad}: expected {name, labels, timestamps, values}` };
}

function InlineSeriesField({ series, onCommit }: { series?: InlineSeries[]; onCommit: (s?: InlineSeries[]) => void }) {
  const [text, setText] = useState(series ? JSON.stringify(series, null, 1) : '');
  const [error, setError] = useState<string>();
  const commit = () => {
    const parsed = parseSeries(text);
    setError(parsed.error);
    if (!parsed.error) {
      onCommit(parsed.value);
    }
  };
  return (
    <InlineFieldRow>
      <InlineField
        label="Series"
        labelWidth={LABEL}
        grow
        invalid={Boolean(error)}
        error={error}
        tooltip="JSON list of {name, labels, timestamps (epoch ms), values}."
      >
        <TextArea
          aria-label="Series JSON"
          rows={4}
          placeholder='[{"name": "cpu", "timestamps": [1700000000000, 1700000060000], "values": [0.4, 0.5]}]'
          value={text}
          onChange={(e) => setText(e.currentTarget.value)}
          onBlur={commit}
        />
      </InlineField>
    </InlineFieldRow>
  );
}
