import React from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, InlineSwitch, RadioButtonGroup } from '@grafana/ui';

import { DataSource } from '../datasource';
import { findQueryType, findSource, Part, QueryPartProps, queryTypeParts, sourceParts } from '../registry';
import { parseDuration, parseInteger, parseSpan } from '../spans';
import { CONTEXT_LENGTH, MAX_HORIZON_STEPS, ModelName, Quantile, TotoJsonData, TotoQuery } from '../types';
import { CommitInput } from './CommitInput';
import { QueryPreview } from './QueryPreview';

export type Props = QueryEditorProps<DataSource, TotoQuery, TotoJsonData>;

const LABEL = 14;

const HORIZON_PRESETS = ['15m', '1h', '6h', '1d', '7d'].map((h) => ({ label: h, value: h }));
const BANDS: Array<{ label: string; quantiles: Quantile[] }> = [
  { label: '10–90', quantiles: [0.1, 0.5, 0.9] },
  { label: '20–80', quantiles: [0.2, 0.5, 0.8] },
  { label: '30–70', quantiles: [0.3, 0.5, 0.7] },
  { label: '10–90 + 20–80', quantiles: [0.1, 0.2, 0.5, 0.8, 0.9] },
  { label: 'Median', quantiles: [0.5] },
];
const MODEL_OPTIONS: Array<SelectableValue<ModelName>> = [
  { label: 'Toto', value: 'toto' },
  { label: 'Statistical', value: 'statistical', description: 'Statistical fallback (seasonality from the data), no model needed' },
  { label: 'Seasonal naive', value: 'seasonal-naive', description: 'Repeats the last season: the baseline' },
];

const bandKey = (qs: readonly number[]) => [...qs].sort((a, b) => a - b).join(',');
const options = (parts: readonly Part[]) => parts.map((p) => ({ label: p.label, value: p.value, description: p.description }));

/** The part's defaults for the keys the query does not have yet. */
function unsetDefaults(part: Part | undefined, query: TotoQuery): Partial<TotoQuery> {
  const entries = Object.entries(part?.defaults ?? {}).filter(([k]) => query[k as keyof TotoQuery] === undefined);
  return Object.fromEntries(entries);
}

export function QueryEditor({ query, onChange, onRunQuery, datasource, range, data }: Props) {
  const source = findSource(query.source ?? 'demo');
  const queryType = findQueryType(query.queryType || 'forecast');

  /** Apply a change; keys set to undefined are removed so the query JSON holds only meaningful values. */
  const change = (patch: Partial<TotoQuery>) => {
    const next: TotoQuery = { ...query, ...patch };
    for (const key of Object.keys(patch) as Array<keyof TotoQuery>) {
      if (next[key] === undefined) {
        delete next[key];
      }
    }
    onChange(next);
  };
  const update = (patch: Partial<TotoQuery>) => {
    change(patch);
    onRunQuery();
  };
  const partProps: QueryPartProps = { query, datasource, range, update, change, onRunQuery };

  const band = bandKey(query.quantiles ?? [0.1, 0.5, 0.9]);
  const bandOptions = BANDS.map((b) => ({ label: b.label, value: bandKey(b.quantiles) }));
  if (!bandOptions.some((o) => o.value === band)) {
    bandOptions.push({ label: `Custom (${band})`, value: band });
  }
  const SourceFields = source?.QueryPart;
  const TypeFields = queryType?.QueryPart;

  return (
    <div data-testid="toto-query-editor">
      <InlineFieldRow>
        <InlineField label="Source" labelWidth={LABEL}>
          <RadioButtonGroup
            options={options(sourceParts())}
            value={source?.value ?? query.source}
            onChange={(v) => update({ source: v, ...unsetDefaults(findSource(v), query) })}
          />
        </InlineField>
        <InlineField label="Output" labelWidth={LABEL}>
          <RadioButtonGroup
            options={options(queryTypeParts())}
            value={queryType?.value ?? query.queryType}
            onChange={(v) => update({ queryType: v, ...unsetDefaults(findQueryType(v), query) })}
          />
        </InlineField>
      </InlineFieldRow>

      {SourceFields && <SourceFields {...partProps} />}

      {!queryType?.ownsHorizon && (
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
      )}
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
          <InlineSwitch aria-label="Joint" value={query.joint ?? false} onChange={(e) => update({ joint: e.currentTarget.checked })} />
        </InlineField>
      </InlineFieldRow>

      {TypeFields && <TypeFields {...partProps} />}

      <QueryPreview datasource={datasource} query={query} range={range} intervalMs={data?.request?.intervalMs} />
    </div>
  );
}
