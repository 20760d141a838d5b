// A source registered from this file alone shows in the query editor, with its own part, and is asked
// whether the query is ready: no edit inside src/.
import React from 'react';
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Input } from '@grafana/ui';

import { DataSource } from '../src/datasource';
import { QueryPartProps, registerSource, sourceParts } from '../src/registry';
import { DEFAULT_QUERY } from '../src/types';
import { makeDataSource, PREVIEW, renderQueryEditor } from './helpers';

declare module '../src/types' {
  interface TotoQuery {
    toyRows?: string;
  }
}

function ToyPart({ query, update }: QueryPartProps) {
  return <Input aria-label="Toy rows" value={query.toyRows ?? ''} onChange={(e) => update({ toyRows: e.currentTarget.value })} />;
}

beforeAll(() =>
  registerSource({
    value: 'toy',
    label: 'Toy',
    description: 'A source from a test',
    QueryPart: ToyPart,
    defaults: { toyRows: '3' },
    queryKeys: ['toyRows'],
    isReady: (q) => q.toyRows !== '0',
  })
);
beforeEach(() => jest.spyOn(DataSource.prototype, 'preview').mockResolvedValue(PREVIEW));
afterEach(() => jest.restoreAllMocks());

describe('source registry', () => {
  it('lists the built-in sources in editor order', () => {
    expect(sourceParts().map((p) => p.value).slice(0, 4)).toEqual(['prometheus', 'grafana', 'demo', 'inline']);
  });

  it('shows a registered source and its part, with its defaults', async () => {
    const user = userEvent.setup({ delay: null });
    const { last } = renderQueryEditor(DEFAULT_QUERY);
    await user.click(screen.getByRole('radio', { name: 'Toy' }));
    expect(last()).toMatchObject({ source: 'toy', toyRows: '3' });
    await user.type(screen.getByLabelText('Toy rows'), '0');
    expect(last().toyRows).toBe('30');
    expect(screen.queryByLabelText('Scenario')).not.toBeInTheDocument();
  });

  it('asks the source whether a query can run', () => {
    const ds = makeDataSource();
    expect(ds.filterQuery({ refId: 'A', source: 'toy', toyRows: '0' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', source: 'toy', toyRows: '1' })).toBe(true);
  });
});
