import React from 'react';
import { InlineFieldRow } from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { QueryPartProps, QueryTypePart } from '../parts';
import { Parsed } from '../spans';
import { DURATION_RE } from '../types';

export const MAX_LEAD_TIMES = 8;

declare module '../types' {
  interface TotoQuery {
    /** How far ahead to record: one duration or several. The value at time t is the forecast for t + leadTime. */
    leadTime?: string | string[];
  }
}

/** "15m, 1h" → the same list, trimmed; each a duration, each once, at most MAX_LEAD_TIMES. */
export function parseLeadTimes(text: string): Parsed<string> {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) {
    return {};
  }
  if (!items.every((s) => DURATION_RE.test(s))) {
    return { error: 'Expected durations such as 15m, 1h' };
  }
  if (new Set(items).size !== items.length) {
    return { error: 'Give each lead time once' };
  }
  if (items.length > MAX_LEAD_TIMES) {
    return { error: `At most ${MAX_LEAD_TIMES} lead times` };
  }
  return { value: items.join(', ') };
}

function RecordedQueryPart({ query, update }: QueryPartProps) {
  const text = Array.isArray(query.leadTime) ? query.leadTime.join(', ') : query.leadTime;
  return (
    <InlineFieldRow>
      <CommitInput
        label="Lead time"
        width={20}
        tooltip="How far ahead to record, e.g. 1h, or several: 15m, 1h. The value answered at time t is the forecast for t + lead time, labelled ml_lead_time; with ml_forecast yhat (median), yhat_lower and yhat_upper (the band). For Grafana-managed recording rules: record this query itself, no Reduce."
        placeholder="1h"
        value={text}
        parse={parseLeadTimes}
        onCommit={(v) => {
          const items = v === undefined ? [] : v.split(', ');
          update({ leadTime: items.length > 1 ? items : items[0] });
        }}
      />
    </InlineFieldRow>
  );
}

export const recorded: QueryTypePart = {
  value: 'recorded',
  label: 'Recorded',
  description: 'The forecast at a lead time, one number per series and quantile (for recording rules)',
  QueryPart: RecordedQueryPart,
  defaults: { leadTime: '1h' },
  ownsHorizon: true,
  queryKeys: ['leadTime'],
};
