import React from 'react';
import { FieldSet } from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { ConfigPartProps } from '../parts';
import { parseDuration, parseInteger } from '../spans';
import { CONTEXT_LENGTH } from '../types';
import { configHelpers, inRange, LABEL } from './helpers';

/** Limits every source shares and the defaults of new queries. */
export function LimitsConfig(props: ConfigPartProps) {
  const { jsonData, setJson } = configHelpers(props);
  return (
    <FieldSet label="Limits and defaults">
      <CommitInput
        label="Timeout (s)"
        labelWidth={LABEL}
        tooltip="For each history fetch (Prometheus, Grafana's query API)."
        placeholder="30"
        value={jsonData.timeoutSeconds}
        parse={inRange(0.1, 600)}
        onCommit={(timeoutSeconds) => setJson({ timeoutSeconds })}
      />
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
  );
}
