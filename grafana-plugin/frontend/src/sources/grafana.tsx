// Source "grafana": forecast any Grafana data source. The user picks a target data source and builds its
// query with that data source's own editor, embedded here the way Grafana's Mixed and Expressions editors
// reuse editors (getDataSourceSrv().get(uid) → ds.components.QueryEditor). The backend runs the query
// through Grafana's /api/ds/query with the service-account token from the settings, after checking that the
// signed-in user may query the target; requests without a user read only the settings' allowed targets.
import React, { useEffect, useState } from 'react';
import { css } from '@emotion/css';
import { CoreApp, DataSourceApi, DataSourceInstanceSettings, DataSourcePluginContextProvider, GrafanaTheme2, ScopedVars } from '@grafana/data';
import { DataSourcePicker, getDataSourceSrv, getTemplateSrv } from '@grafana/runtime';
import { DataQuery } from '@grafana/schema';
import { Alert, FieldSet, IconButton, InlineField, InlineFieldRow, Input, LoadingPlaceholder, SecretInput, useStyles2 } from '@grafana/ui';

import { configHelpers, LABEL } from '../config/helpers';
import { ConfigPartProps, QueryPartProps, SourcePart } from '../parts';
import { PLUGIN_TYPE, TotoQuery } from '../types';

/** The target data source. Not `datasource`: Grafana routes a query by its own `datasource` key. */
export interface TargetRef {
  uid: string;
  type: string;
}

export type SourceQuery = DataQuery & Record<string, unknown>;

declare module '../types' {
  interface TotoQuery {
    sourceDatasource?: TargetRef;
    /** The target's own query, exactly as its editor builds it. */
    sourceQuery?: SourceQuery;
  }
  interface TotoJsonData {
    /** Grafana's URL as the plugin host reaches it; empty: GF_APP_URL from the request's plugin context. */
    grafanaUrl?: string;
    /** Data-source uids that requests without a signed-in user (alert rules) may read. */
    allowedTargets?: string[];
  }
  interface TotoSecureJsonData {
    /** A Grafana service-account token (Viewer, or datasources:query on the targets, and users.permissions:read). */
    grafanaToken?: string;
  }
}

/** Data sources the picker offers: any with metrics, except this plugin (a forecast of a forecast loops). */
export const isTargetCandidate = (ds: DataSourceInstanceSettings) => ds.type !== PLUGIN_TYPE && ds.meta?.id !== PLUGIN_TYPE;

/** Loaded target data sources by uid, so template variables can be resolved by the target's own rules. */
const loaded = new Map<string, DataSourceApi>();

/** Drop the loaded instances (after the data sources were reloaded; tests). */
export const forgetLoadedTargets = () => loaded.clear();

export function loadTarget(ref: TargetRef): Promise<DataSourceApi> {
  return getDataSourceSrv()
    .get(ref)
    .then((ds) => {
      loaded.set(ref.uid, ds);
      return ds;
    });
}

/** Every string inside a JSON value, replaced. */
function mapStrings(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') {
    return f(value);
  }
  if (Array.isArray(value)) {
    return value.map((v) => mapStrings(v, f));
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)]));
  }
  return value;
}

/**
 * The target's own interpolateVariablesInQueries (what Explore and Mixed use) when its instance is loaded —
 * the editor loads it, and the first query of a dashboard warms it — else Grafana's plain replacement in
 * every string of the query (multi-value variables then use the default {a,b} format).
 */
function interpolate(query: TotoQuery, scopedVars: ScopedVars): TotoQuery {
  const { sourceQuery, sourceDatasource } = query;
  if (!sourceQuery || !sourceDatasource) {
    return query;
  }
  const target = loaded.get(sourceDatasource.uid);
  if (!target) {
    loadTarget(sourceDatasource).catch(() => undefined);
  }
  const resolved = target?.interpolateVariablesInQueries
    ? target.interpolateVariablesInQueries([sourceQuery], scopedVars)[0]
    : (mapStrings(sourceQuery, (s) => getTemplateSrv().replace(s, scopedVars)) as TotoQuery['sourceQuery']);
  return { ...query, sourceQuery: resolved as SourceQuery };
}

type Loaded = { uid: string; ds?: DataSourceApi; error?: string };

/** The target data source's own query editor, fed and read through sourceQuery. */
function TargetEditor({ query, change, onRunQuery, range, target }: QueryPartProps & { target: TargetRef }) {
  const styles = useStyles2(getStyles);
  const [state, setState] = useState<Loaded>();
  const { uid, type } = target;

  useEffect(() => {
    let stale = false;
    loadTarget({ uid, type }).then(
      (ds) => !stale && setState({ uid, ds }),
      (e) => !stale && setState({ uid, error: e?.message ?? String(e) })
    );
    return () => {
      stale = true;
    };
  }, [uid, type]);

  const ds = state?.uid === target.uid ? state.ds : undefined;
  // A freshly picked target starts from its own default query, as a new query row would.
  useEffect(() => {
    if (ds && !query.sourceQuery) {
      change({ sourceQuery: { refId: query.refId, ...ds.getDefaultQuery?.(CoreApp.PanelEditor) } });
    }
  }, [ds, query.sourceQuery, query.refId, change]);

  if (state?.uid === target.uid && state.error) {
    return <Alert severity="error" title={`Cannot load data source ${target.uid}`}>{state.error}</Alert>;
  }
  const settings = ds && getDataSourceSrv().getInstanceSettings(uid);
  if (!ds || !settings) {
    return <LoadingPlaceholder text="Loading the data source's query editor…" />;
  }
  const Editor = ds.components?.QueryEditor;
  if (!Editor) {
    return <Alert severity="warning" title={`${ds.name} has no query editor to embed`} />;
  }
  return (
    <div className={styles.embedded} data-testid="toto-target-editor">
      <div className={styles.title}>{ds.name} query</div>
      <DataSourcePluginContextProvider instanceSettings={settings}>
        <Editor
          datasource={ds}
          query={query.sourceQuery ?? { refId: query.refId }}
          onChange={(sourceQuery: DataQuery) => change({ sourceQuery: sourceQuery as SourceQuery })}
          onRunQuery={onRunQuery}
          range={range}
          app={CoreApp.PanelEditor}
        />
      </DataSourcePluginContextProvider>
    </div>
  );
}

function GrafanaQueryPart(props: QueryPartProps) {
  const { query, change } = props;
  const target = query.sourceDatasource;
  return (
    <>
      <InlineFieldRow>
        <InlineField
          label="Data source"
          labelWidth={14}
          tooltip="The data source whose query is forecast. Its query runs through Grafana's query API with the token from the data source settings, for dashboards and alert rules."
        >
          <DataSourcePicker
            metrics
            noDefault
            width={36}
            placeholder="Pick a data source to forecast"
            current={target?.uid ?? null}
            filter={isTargetCandidate}
            onChange={(ds) =>
              ds.uid !== target?.uid && change({ sourceDatasource: { uid: ds.uid, type: ds.type }, sourceQuery: undefined })
            }
          />
        </InlineField>
      </InlineFieldRow>
      {target && <TargetEditor {...props} target={target} />}
    </>
  );
}

/** The data sources requests without a signed-in user may read: a picker that adds one, a list that removes. */
function AllowedTargets({ uids, onChange }: { uids: string[]; onChange: (uids: string[]) => void }) {
  const styles = useStyles2(getStyles);
  const nameOf = (uid: string) => getDataSourceSrv().getInstanceSettings(uid)?.name ?? uid;
  return (
    <>
      <InlineField
        label="Allowed targets"
        labelWidth={LABEL}
        tooltip="Data sources that requests without a signed-in user may read through this data source: alert rules, public dashboards, and Grafana versions that do not forward ID tokens."
      >
        <DataSourcePicker
          metrics
          noDefault
          width={48}
          placeholder="Add a data source alert rules may read"
          current={null}
          filter={(ds) => isTargetCandidate(ds) && !uids.includes(ds.uid)}
          onChange={(ds) => onChange([...uids, ds.uid])}
        />
      </InlineField>
      <ul className={styles.allowed} aria-label="Allowed targets">
        {uids.map((uid) => (
          <li key={uid}>
            {nameOf(uid)} <code>{uid}</code>
            <IconButton name="times" size="sm" aria-label={`Remove ${nameOf(uid)}`} onClick={() => onChange(uids.filter((u) => u !== uid))} />
          </li>
        ))}
      </ul>
      <div className={styles.help}>
        Alert rules run without a signed-in user: through this data source they can read only the data sources listed
        here{uids.length === 0 ? ' (none yet, so an alert rule on a Grafana data source is refused)' : ''}. Signed-in
        users read what their own Grafana permissions allow.
      </div>
    </>
  );
}

function GrafanaConfigPart(props: ConfigPartProps) {
  const { jsonData, setJson, secretProps } = configHelpers(props);
  const styles = useStyles2(getStyles);
  return (
    <FieldSet label="Grafana API (for Grafana data source queries)">
      <div className={styles.help}>
        Queries with source “Grafana data source” run the panel’s own query of another data source through
        Grafana’s query API, for dashboards and alert rules alike, after checking that the signed-in user may query
        that data source. Create a service account with the Viewer role (or <code>datasources:query</code> on the data
        sources to forecast) and <code>users.permissions:read</code> (in open-source Grafana: the Admin role), and paste
        one of its tokens here.
      </div>
      <InlineField
        label="Grafana URL"
        labelWidth={LABEL}
        tooltip="Only when the plugin cannot reach Grafana at the URL Grafana announces (GF_APP_URL / root_url)."
      >
        <Input
          aria-label="Grafana URL"
          width={48}
          placeholder="defaults to Grafana's own URL (GF_APP_URL)"
          value={jsonData.grafanaUrl ?? ''}
          onChange={(e) => setJson({ grafanaUrl: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Service account token" labelWidth={LABEL} tooltip="Sent as Authorization: Bearer <token> to Grafana's /api/ds/query.">
        <SecretInput width={48} placeholder="glsa_…" {...secretProps('grafanaToken', 'Service account token')} />
      </InlineField>
      <AllowedTargets uids={jsonData.allowedTargets ?? []} onChange={(allowedTargets) => setJson({ allowedTargets })} />
    </FieldSet>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  embedded: css({
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1),
    margin: theme.spacing(0.5, 0, 1),
  }),
  title: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, marginBottom: theme.spacing(0.5) }),
  help: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, maxWidth: 720, marginBottom: theme.spacing(1) }),
  allowed: css({ listStyle: 'none', margin: theme.spacing(0, 0, 0.5), padding: 0, '& code': { marginLeft: theme.spacing(0.5) } }),
});

export const grafana: SourcePart = {
  value: 'grafana',
  label: 'Grafana data source',
  description: "Any Grafana data source's query, through Grafana's query API",
  QueryPart: GrafanaQueryPart,
  ConfigPart: GrafanaConfigPart,
  queryKeys: ['sourceDatasource', 'sourceQuery'],
  isReady: (query) => Boolean(query.sourceDatasource?.uid && query.sourceQuery),
  interpolate,
};
