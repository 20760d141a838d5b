import React, { useState } from 'react';
import { InlineField, InlineFieldRow, TextArea } from '@grafana/ui';

import { QueryPartProps, SourcePart } from '../parts';

/** One inline history series. */
export interface InlineSeries {
  name?: string;
  labels?: Record<string, string>;
  /** Epoch milliseconds, same length as values. */
  timestamps: number[];
  values: Array<number | null>;
}

declare module '../types' {
  interface TotoQuery {
    series?: InlineSeries[];
  }
}

const SERIES_KEYS = ['name', 'labels', 'timestamps', 'values'];

export function parseSeries(text: string): { value?: InlineSeries[]; error?: string } {
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
      Object.keys(s).some((k) => !SERIES_KEYS.includes(k))
  );
  return bad < 0 ? { value: list } : { error: `Series ${bad}: expected {name, labels, timestamps, values}` };
}

function InlineQueryPart({ query, update }: QueryPartProps) {
  const [text, setText] = useState(query.series ? JSON.stringify(query.series, null, 1) : '');
  const [error, setError] = useState<string>();
  const commit = () => {
    const parsed = parseSeries(text);
    setError(parsed.error);
    if (!parsed.error) {
      update({ series: parsed.value });
    }
  };
  return (
    <InlineFieldRow>
      <InlineField
        label="Series"
        labelWidth={14}
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

export const inline: SourcePart = {
  value: 'inline',
  label: 'Inline',
  description: 'Series given as JSON in the query',
  QueryPart: InlineQueryPart,
  queryKeys: ['series'],
};
