import React from 'react';
import { InlineField, InlineFieldRow, Select } from '@grafana/ui';

import { QueryPartProps, SourcePart } from '../parts';

export const SCENARIOS = ['postgres-load', 'cpu', 'memory-leak', 'disk-fill', 'latency-p99', 'all'] as const;
export type Scenario = (typeof SCENARIOS)[number];

declare module '../types' {
  interface TotoQuery {
    /** Demo telemetry scenario. */
    scenario?: Scenario;
  }
}

function DemoQueryPart({ query, update }: QueryPartProps) {
  return (
    <InlineFieldRow>
      <InlineField label="Scenario" labelWidth={14}>
        <Select
          aria-label="Scenario"
          width={24}
          options={SCENARIOS.map((s) => ({ label: s, value: s }))}
          value={query.scenario ?? 'postgres-load'}
          onChange={(v) => update({ scenario: v.value })}
        />
      </InlineField>
    </InlineFieldRow>
  );
}

export const demo: SourcePart = {
  value: 'demo',
  label: 'Demo',
  description: 'Built-in synthetic telemetry',
  QueryPart: DemoQueryPart,
  queryKeys: ['scenario'],
};
