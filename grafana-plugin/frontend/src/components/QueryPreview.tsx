import React, { useEffect, useState } from 'react';
import { css } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { Button, Icon, useStyles2 } from '@grafana/ui';

import { DataSource } from '../datasource';
import { findQueryType, findSource } from '../registry';
import { PreviewResult, TotoQuery } from '../types';

interface Props {
  datasource: DataSource;
  query: TotoQuery;
  range?: TimeRange;
  intervalMs?: number;
}

type State = { result?: PreviewResult; error?: string };

/** Message of a failed resource call: the backend answers {"error": "..."} with a 4xx. */
function errorText(e: unknown): string {
  const err = e as { data?: { error?: string; message?: string }; message?: string; statusText?: string };
  return err?.data?.error ?? err?.data?.message ?? err?.message ?? err?.statusText ?? String(e);
}

/** "now+6h" when the horizon is a whole duration Grafana's date math accepts, else "now+1h". */
export function futureTo(horizon: TotoQuery['horizon']): string {
  const h = typeof horizon === 'string' ? horizon.replace(/\s/g, '') : '';
  return /^[0-9]+[smhdw]$/.test(h) ? `now+${h}` : 'now+1h';
}

/** One line from the backend's preview route (and its summary, e.g. a backtest's verdict), plus the hint that a forecast needs a time range ending in the future. */
export function QueryPreview({ datasource, query, range, intervalMs }: Props) {
  const styles = useStyles2(getStyles);
  const [state, setState] = useState<State>({});
  const from = range?.from.valueOf();
  const to = range?.to.valueOf();
  const queryJson = JSON.stringify(query);

  useEffect(() => {
    const ready = findSource(query.source ?? 'demo')?.isReady?.(query) ?? true;
    if (!range || !ready) {
      setState({});
      return;
    }
    let stale = false;
    const timer = setTimeout(() => {
      datasource.preview(query, range, intervalMs).then(
        (result) => !stale && setState({ result }),
        (e) => !stale && setState({ error: errorText(e) })
      );
    }, 300);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
    // Re-run when the query's content or the range's bounds change, not on every new object.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [queryJson, from, to, intervalMs, datasource]);

  const { result, error } = state;
  const isForecast = findQueryType(query.queryType || 'forecast')?.drawsFuture ?? false;
  const endsInFuture = to !== undefined && to > Date.now() + 60_000;
  const target = futureTo(query.horizon);

  return (
    <div className={styles.box} data-testid="toto-preview">
      {result && (
        <div aria-label="Preview">
          <Icon name="info-circle" /> {result.series} series · step {result.step} · history {result.historySpan}
          {result.horizonSteps !== undefined && ` · forecast ${result.horizonSteps} steps`}
          {result.summary && (
            <div aria-label="Preview summary" className={styles.summary}>
              {result.summary}
            </div>
          )}
          {result.notices?.map((n) => (
            <div key={n} className={styles.notice}>
              {n}
            </div>
          ))}
        </div>
      )}
      {error && (
        <div aria-label="Preview error" className={styles.error}>
          <Icon name="exclamation-triangle" /> {error}
        </div>
      )}
      {isForecast && endsInFuture && <div className={styles.hint}>The forecast is drawn from now to the end of the time range.</div>}
      {isForecast && !endsInFuture && (
        <div className={styles.hint}>
          The forecast starts at now: the panel&apos;s time range must extend into the future (e.g. to {target}) to show it.
          {range && (
            <Button size="sm" variant="secondary" icon="clock-nine" onClick={() => locationService.partial({ to: target }, true)}>
              Extend to {target}
            </Button>
          )}
        </div>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  box: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, padding: theme.spacing(0.5, 0) }),
  summary: css({ color: theme.colors.text.primary, fontWeight: theme.typography.fontWeightMedium }),
  notice: css({ color: theme.colors.warning.text }),
  error: css({ color: theme.colors.error.text }),
  hint: css({ marginTop: theme.spacing(0.5), display: 'flex', alignItems: 'center', gap: theme.spacing(1), flexWrap: 'wrap' }),
});
