// A page that draws the plugin's answer the way a Grafana time-series panel does, for the browser test
// (panels/panels.test.ts) and the README's screenshots. Not part of the plugin bundle.
//
// The path is Grafana's, with its Apache-2.0 parts: the JSON /api/ds/query returns → @grafana/runtime's
// toDataQueryResponse (what DataSourceWithBackend runs in the browser) → @grafana/data's
// applyFieldOverrides with the panel's fieldConfig (defaults only fill what the data source left unset,
// overrides win) → @grafana/ui's TimeSeries (GraphNG + UPlotChart: frames joined on time, uPlot config,
// bands from custom.fillBelowTo, legend). Grafana's own time-series panel lives in its AGPL core and is
// not used: this approximates it (no tooltip, no annotations, no panel-level data transforms).
import React from 'react';
import { createRoot } from 'react-dom/client';
import type uPlot from 'uplot';
import {
  applyFieldOverrides,
  createTheme,
  DataFrame,
  dateTime,
  Field,
  FieldConfigOptionsRegistry,
  FieldConfigPropertyItem,
  FieldConfigSource,
  FieldType,
  getFieldDisplayName,
  GrafanaTheme2,
  makeTimeRange,
} from '@grafana/data';
import { BackendDataSourceResponse, toDataQueryResponse } from '@grafana/runtime';
import { LegendDisplayMode } from '@grafana/schema';
import { GlobalStyles, PanelChrome, ThemeContext, TimeSeries, UPlotConfigBuilder } from '@grafana/ui';
// uPlot's own stylesheet, which Grafana's build includes globally (webpack: the file's text)
import uPlotCss from 'uplot/dist/uPlot.min.css';

import { PANELS } from './panels';
import { DrawnSeries, PanelFile, PanelState, Rgba } from './panelState';

const PANEL_WIDTH = 1000;
const PANEL_HEIGHT = 380;

const theme = createTheme({ colors: { mode: 'dark' } });

/** The panel's field config registry: every property the fieldConfig sets, passed through as is
 * (Grafana's standard and time-series options do the same for these keys; their editors are core). */
function registryFor(source: FieldConfigSource): FieldConfigOptionsRegistry {
  const item = (path: string, isCustom: boolean) =>
    ({
      id: isCustom ? `custom.${path}` : path,
      path,
      name: path,
      isCustom,
      process: (value: unknown) => value,
      shouldApply: () => true,
      override: () => null,
      editor: () => null,
    }) as unknown as FieldConfigPropertyItem;
  const { custom, ...standard } = source.defaults;
  return new FieldConfigOptionsRegistry(() => [
    ...Object.keys(standard).map((key) => item(key, false)),
    ...Object.keys(custom ?? {}).map((key) => item(key, true)),
  ]);
}

/** What the panel receives: the answer's frames for the panel's refIds, field config applied. */
function panelFrames(file: PanelFile): DataFrame[] {
  const def = PANELS[file.name];
  if (!def) {
    throw new Error(`no panel definition for ${file.name}`);
  }
  const { data } = toDataQueryResponse({ data: file.response as BackendDataSourceResponse });
  const shown = (data as DataFrame[]).filter((f) => def.refIds.includes(f.refId ?? ''));
  const withConfig = applyFieldOverrides({
    data: shown,
    fieldConfig: def.fieldConfig,
    fieldConfigRegistry: registryFor(def.fieldConfig),
    replaceVariables: (s: string) => s,
    theme,
    timeZone: 'utc',
  });
  // A time-series panel draws frames that have a time field and a number field.
  return withConfig.filter(
    (f) => f.fields.some((x) => x.type === FieldType.time) && f.fields.some((x) => x.type === FieldType.number)
  );
}

function countNaN(frames: DataFrame[]): number {
  let n = 0;
  for (const f of frames) {
    for (const field of f.fields) {
      for (const v of field.values) {
        if (typeof v === 'number' && Number.isNaN(v)) {
          n++;
        }
      }
    }
  }
  return n;
}

type Call = (u: uPlot, i: number) => unknown;
const resolve = (value: unknown, u: uPlot, i: number): string | null => {
  const v = typeof value === 'function' ? (value as Call)(u, i) : value;
  return v == null ? null : String(v);
};

function stateOf(u: uPlot, aligned: DataFrame, frames: DataFrame[], t: GrafanaTheme2): PanelState {
  const nameOf = (field: Field) => {
    const origin = field.state?.origin;
    const frame = origin ? frames[origin.frameIndex] : aligned;
    return getFieldDisplayName(origin ? frame.fields[origin.fieldIndex] : field, frame, frames);
  };
  const series: DrawnSeries[] = [];
  for (let i = 1; i < u.series.length; i++) {
    const s = u.series[i];
    const field = aligned.fields[i];
    series.push({
      name: nameOf(field),
      frameIndex: field.state?.origin?.frameIndex ?? -1,
      fieldIndex: field.state?.origin?.fieldIndex ?? -1,
      stroke: resolve(s.stroke, u, i),
      fill: resolve(s.fill, u, i),
      width: s.width ?? 0,
      dash: s.dash ?? null,
      show: s.show !== false,
      spanGaps: s.spanGaps === true,
      scale: s.scale ?? '',
      values: Array.from(u.data[i] as ArrayLike<number | null | undefined>, (v) => (v == null ? null : v)),
    });
  }
  // uPlot keeps its options' bands on the instance (`self.bands = opts.bands`); its typings leave it out
  const bands = ((u as unknown as { bands?: uPlot.Band[] }).bands ?? []).map((b, bi) => ({
    upper: b.series[0] - 1,
    lower: b.series[1] - 1,
    fill: resolve(b.fill, u, bi),
  }));
  const legend = Array.from(document.querySelectorAll<HTMLElement>('[data-testid^="data-testid VizLegend series "]')).map(
    (el) => {
      // a solid line's icon is a coloured box; a dashed one's a gradient of its colour
      const icon = el.querySelector<HTMLElement>('[data-testid="series-icon"]');
      const style = icon ? getComputedStyle(icon) : null;
      const dashed = Boolean(style && style.backgroundImage !== 'none');
      const paint = style ? (dashed ? style.backgroundImage : style.backgroundColor) : '';
      return { label: el.innerText.trim(), color: paint.match(/rgba?\([^)]*\)/)?.[0] ?? '', dashed };
    }
  );
  const scales: PanelState['scales'] = {};
  for (const [key, scale] of Object.entries(u.scales)) {
    scales[key] = { min: scale.min ?? null, max: scale.max ?? null };
  }
  const thresholds = frames
    .flatMap((f) => f.fields)
    .filter((f) => f.type === FieldType.number && f.config.custom?.thresholdsStyle?.mode !== 'off')
    .slice(0, 1)
    .flatMap((f) => f.config.thresholds?.steps ?? [])
    .filter((step) => Number.isFinite(step.value))
    .map((step) => ({ value: step.value, color: t.visualization.getColorByName(step.color) }));
  return {
    times: Array.from(u.data[0] as ArrayLike<number>),
    series,
    bands,
    legend,
    scales,
    meta: frames.map((f) => ({ custom: f.meta?.custom, notices: f.meta?.notices })),
    thresholds,
    nanValues: countNaN(frames),
  };
}

interface Drawn {
  u: uPlot;
  aligned: DataFrame;
  frames: DataFrame[];
}

declare global {
  interface Window {
    /** draws one case; resolves once uPlot has drawn it */
    showPanel: (file: PanelFile) => Promise<void>;
    panelState: () => PanelState;
    /** canvas pixels at (x, y) in data coordinates of the x scale and the first y scale */
    pixelsAt: (points: Array<[number, number]>) => Rgba[];
    /** every pixel of the plot area's column at time x, top to bottom */
    pixelColumn: (x: number) => Rgba[];
  }
}

let drawn: Drawn | null = null;

function yScaleOf(u: uPlot): string {
  return u.series.find((s, i) => i > 0 && s.scale)?.scale ?? 'y';
}

function pixel(u: uPlot, px: number, py: number): Rgba {
  const d = u.ctx.getImageData(Math.round(px), Math.round(py), 1, 1).data;
  return [d[0], d[1], d[2], d[3]];
}

window.pixelsAt = (points) => {
  const u = drawn!.u;
  const y = yScaleOf(u);
  return points.map(([xv, yv]) => pixel(u, u.valToPos(xv, 'x', true), u.valToPos(yv, y, true)));
};

window.pixelColumn = (xv) => {
  const u = drawn!.u;
  const px = Math.round(u.valToPos(xv, 'x', true));
  const { top, height } = u.bbox;
  const d = u.ctx.getImageData(px, top, 1, height).data;
  const out: Rgba[] = [];
  for (let i = 0; i < d.length; i += 4) {
    out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
  }
  return out;
};

window.panelState = () => stateOf(drawn!.u, drawn!.aligned, drawn!.frames, theme);

window.showPanel = (file) =>
  new Promise<void>((done, fail) => {
    let frames: DataFrame[];
    try {
      frames = panelFrames(file);
    } catch (e) {
      fail(e);
      return;
    }
    const hooked = new WeakSet<UPlotConfigBuilder>();
    const capture = (config: UPlotConfigBuilder, aligned: DataFrame) => {
      if (!hooked.has(config)) {
        hooked.add(config);
        config.addHook('draw', (u: uPlot) => {
          drawn = { u, aligned, frames };
          // the legend renders in the same React commit; one frame later both are on screen
          requestAnimationFrame(() => done());
        });
      }
      return null;
    };
    const timeRange = makeTimeRange(dateTime(file.from), dateTime(file.to));
    createRoot(document.getElementById('root')!).render(
      <ThemeContext.Provider value={theme}>
        <GlobalStyles />
        <div id="panel" style={{ padding: 8, width: PANEL_WIDTH + 16, background: theme.colors.background.canvas }}>
          <PanelChrome width={PANEL_WIDTH} height={PANEL_HEIGHT} title={file.title}>
            {(width, height) => (
              <TimeSeries
                frames={frames}
                timeRange={timeRange}
                timeZone="utc"
                width={width}
                height={height}
                legend={{ showLegend: true, displayMode: LegendDisplayMode.List, placement: 'bottom', calcs: [] }}
              >
                {capture}
              </TimeSeries>
            )}
          </PanelChrome>
        </div>
      </ThemeContext.Provider>
    );
  });

const style = document.createElement('style');
style.textContent = uPlotCss;
document.head.appendChild(style);
