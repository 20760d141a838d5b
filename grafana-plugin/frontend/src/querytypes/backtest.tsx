import React from 'react';
import { InlineFieldRow } from '@grafana/ui';

import { CommitInput } from '../components/CommitInput';
import { QueryPartProps, QueryTypePart } from '../parts';
import { parseInteger } from '../spans';

export const BACKTEST_WINDOWS = { min: 1, max: 32, default: 8 };

declare module '../types' {
  interface TotoQuery {
    /** K: rolling origins re-forecast from the series' own past, each `horizon` long. */
    backtestWindows?: number;
  }
}

function BacktestQueryPart({ query, update }: QueryPartProps) {
  return (
    <InlineFieldRow>
      <CommitInput
        label="Windows"
        tooltip={`Rolling origins (${BACKTEST_WINDOWS.min}-${BACKTEST_WINDOWS.max}): the last K horizons of the history are re-forecast by each model and scored against what happened (MASE, CRPS, 10-90 coverage).`}
        placeholder={String(BACKTEST_WINDOWS.default)}
        value={query.backtestWindows}
        parse={(t) => parseInteger(t, BACKTEST_WINDOWS.min, BACKTEST_WINDOWS.max)}
        onCommit={(backtestWindows) => update({ backtestWindows })}
      />
    </InlineFieldRow>
  );
}

export const backtest: QueryTypePart = {
  value: 'backtest',
  label: 'Backtest',
  description: 'How well each model would have forecast this metric',
  QueryPart: BacktestQueryPart,
  defaults: { backtestWindows: BACKTEST_WINDOWS.default },
  queryKeys: ['backtestWindows'],
};
