import React from 'react';
import { InlineFieldRow } from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { QueryPartProps, QueryTypePart } from '../parts';
import { parseSpan } from '../spans';

export const MAX_ANOMALY_WINDOW_STEPS = 4096;

declare module '../types' {
  interface TotoQuery {
    /** Length of each rolling forecast window: a duration or a number of steps. */
    anomalyWindow?: Span;
  }
}

function AnomalyQueryPart({ query, update }: QueryPartProps) {
  return (
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
  );
}

export const anomaly: QueryTypePart = {
  value: 'anomaly',
  label: 'Anomaly',
  description: 'Actual vs rolling forecast band',
  QueryPart: AnomalyQueryPart,
  queryKeys: ['anomalyWindow'],
};
