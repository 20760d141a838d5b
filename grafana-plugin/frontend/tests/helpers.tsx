import React, { useState } from 'react';
import { render } from '@testing-library/react';
import { dateTime, DataSourceInstanceSettings, TimeRange } from '@grafana/data';

import { QueryEditor } from '../src/components/QueryEditor';
import { DataSource } from '../src/datasource';
import { PreviewResult, TotoJsonData, TotoQuery } from '../src/types';

export function makeDataSource(jsonData: TotoJsonData = {}): DataSource {
  const settings = {
    id: 1,
    uid: 'toto-uid',
    type: 'toto-forecast-datasource',
    name: 'Toto Forecast',
    access: 'proxy',
    readOnly: false,
    jsonData,
    meta: { id: 'toto-forecast-datasource', name: 'Toto Forecast', type: 'datasource', info: {} },
  } as unknown as DataSourceInstanceSettings<TotoJsonData>;
  return new DataSource(settings);
}

/** A time range ending `toOffsetMs` after now (0: a range that ends now, as dashboards default to). */
export function makeRange(toOffsetMs = 0): TimeRange {
  const now = Date.now();
  return {
    from: dateTime(now - 6 * 3600_000),
    to: dateTime(now + toOffsetMs),
    raw: { from: 'now-6h', to: toOffsetMs ? 'now+1h' : 'now' },
  };
}

export const PREVIEW: PreviewResult = {
  series: 3,
  step: '1m',
  stepMs: 60000,
  historySpan: '1d 10h',
  horizonSteps: 60,
  notices: [],
};

/** Render the query editor the way Grafana does: it owns the query and feeds each change back. */
export function renderQueryEditor(initial: Partial<TotoQuery>, opts: { ds?: DataSource; range?: TimeRange } = {}) {
  const ds = opts.ds ?? makeDataSource();
  const emitted: TotoQuery[] = [];
  const onRunQuery = jest.fn();
  function Harness() {
    const [query, setQuery] = useState<TotoQuery>({ refId: 'A', ...initial });
    return (
      <QueryEditor
        datasource={ds}
        query={query}
        range={opts.range ?? makeRange()}
        onRunQuery={onRunQuery}
        onChange={(q) => {
          emitted.push(q);
          setQuery(q);
        }}
      />
    );
  }
  const utils = render(<Harness />);
  return { ...utils, ds, emitted, onRunQuery, last: () => emitted[emitted.length - 1] };
}
