import React from 'react';
import { SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, RadioButtonGroup, Select } from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { QueryPartProps, QueryTypePart } from '../parts';
import { parseNumber } from '../spans';
import { Quantile, QUANTILE_LEVELS } from '../types';

export const DIRECTIONS = ['above', 'below'] as const;
export type Direction = (typeof DIRECTIONS)[number];

declare module '../types' {
  interface TotoQuery {
    threshold?: number;
    direction?: Direction;
    /** Quantile watched for the breach; default p90 above, p10 below. */
    thresholdQuantile?: Quantile;
  }
}

const DIRECTION_OPTIONS: Array<SelectableValue<Direction>> = [
  { label: 'Above', value: 'above' },
  { label: 'Below', value: 'below' },
];
const QUANTILE_OPTIONS: Array<SelectableValue<Quantile>> = QUANTILE_LEVELS.map((q) => ({ label: `p${Math.round(q * 100)}`, value: q }));

function ThresholdQueryPart({ query, update }: QueryPartProps) {
  return (
    <InlineFieldRow>
      <CommitInput
        label="Threshold value"
        value={query.threshold}
        placeholder="e.g. 90"
        parse={parseNumber}
        onCommit={(threshold) => update({ threshold })}
      />
      <InlineField label="Breach when">
        <RadioButtonGroup options={DIRECTION_OPTIONS} value={query.direction ?? 'above'} onChange={(direction) => update({ direction })} />
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
  );
}

export const threshold: QueryTypePart = {
  value: 'threshold',
  label: 'Threshold',
  description: 'Time to breach, probability, peak (for alert rules and annotations)',
  QueryPart: ThresholdQueryPart,
  queryKeys: ['threshold', 'direction', 'thresholdQuantile'],
};
