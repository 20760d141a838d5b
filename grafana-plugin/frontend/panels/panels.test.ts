/**
 * @jest-environment node
 */
// The plugin's answers drawn by @grafana/ui's TimeSeries in headless Chromium (screenshots/panel.tsx),
// checked the way a user reads the panel: which series are drawn and named in the legend, that each band
// is shaded between its own series' edges in that series' colour, that the forecast starts one step
// after the last history point, the history gap, the units' axis, the threshold line, and no NaN.
// The answers come from the Go harness (tests/conformance/panels_test.go: the plugin started as Grafana
// does, the SDK's JSON of /api/ds/query); panels.sh runs both. Each panel's PNG is written to
// TOTO_PANEL_SCREENSHOTS (screenshot.sh points it at screenshots/panels/).
import fs from 'fs';
import os from 'os';
import path from 'path';
import { pathToFileURL } from 'url';
import { Browser, Page } from 'playwright-core';

import type { DrawnSeries, PanelFile, PanelState, Rgba } from '../screenshots/panelState';
import { launchChromium } from './chromium';

const FRAMES_DIR = process.env.TOTO_PANEL_FRAMES_DIR ?? path.resolve(__dirname, '../../../var/panels');
const SHOTS_DIR = process.env.TOTO_PANEL_SCREENSHOTS ?? path.join(os.tmpdir(), 'toto-panels');
const PAGE_DIR = path.resolve(__dirname, '../.screenshot-build/panel');

interface SeriesExpectation {
  history: string;
  median: string;
  /** [upper, lower] display names, outermost first */
  bands: Array<[string, string]>;
}

interface PanelExpectation {
  series: SeriesExpectation[];
  /** the unit of the y axis the series share ('' when the source gives none) */
  unit: string;
  /** a stretch of the history without data, [from, to) epoch ms */
  gap?: [number, number];
  /** the threshold line the panel draws, and the refId of the threshold query that predicts its breach */
  threshold?: { value: number; color: string; refId: string };
}

const forecastOf = (name: string, bands: number[][] = [[90, 10]]): SeriesExpectation => ({
  history: name,
  median: `${name} p50`,
  bands: bands.map(([hi, lo]) => [`${name} p${hi}`, `${name} p${lo}`]),
});

const EXPECTED: Record<string, PanelExpectation> = {
  forecast: { series: [forecastOf('db_qps')], unit: 'reqps' },
  'two-bands': {
    series: [
      forecastOf('cpu_utilisation', [
        [90, 10],
        [80, 20],
      ]),
    ],
    unit: 'percent',
  },
  'labelled-series': {
    series: ['web-1', 'web-2', 'web-3'].map((i) => forecastOf(`http_requests{instance="${i}"}`)),
    unit: '',
  },
  'history-gap': {
    series: [forecastOf('queue_depth')],
    unit: '',
    gap: [Date.UTC(2026, 11, 1, 10), Date.UTC(2026, 11, 1, 12)],
  },
  threshold: { series: [forecastOf('db_qps')], unit: 'reqps', threshold: { value: 500, color: '#F2495C', refId: 'B' } },
};

// -- colours ---------------------------------------------------------------------------------------------

/** RGBA (alpha 0-1) of '#RRGGBB', '#RRGGBBAA', 'rgb(r, g, b)' or 'rgba(r, g, b, a)'. */
function parseColor(css: string | null): [number, number, number, number] {
  const s = (css ?? '').trim();
  let m = s.match(/^#([0-9a-f]{6})([0-9a-f]{2})?$/i);
  if (m) {
    const n = parseInt(m[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255, m[2] ? parseInt(m[2], 16) / 255 : 1];
  }
  m = s.match(/^rgba?\(([^)]*)\)$/);
  if (m) {
    const [r, g, b, a] = m[1].split(',').map((x) => parseFloat(x));
    return [r, g, b, Number.isFinite(a) ? a : 1];
  }
  throw new Error(`not a colour: ${JSON.stringify(css)}`);
}

const rgb = (css: string | null) => parseColor(css).slice(0, 3).join(',');
const near = (a: number[], b: number[], tolerance: number) => a.every((v, i) => Math.abs(v - b[i]) <= tolerance);

// -- reading the state ----------------------------------------------------------------------------------

function byName(state: PanelState, name: string): DrawnSeries {
  const found = state.series.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]); // drawn once
  return found[0];
}

const indexOf = (state: PanelState, name: string) => state.series.findIndex((s) => s.name === name);

function firstAndLast(state: PanelState, s: DrawnSeries): { first: number; last: number } {
  const at = s.values.flatMap((v, i) => (v == null ? [] : [state.times[i]]));
  return { first: at[0], last: at[at.length - 1] };
}

function stepOf(state: PanelState): number {
  const steps = state.meta.map((m) => m.custom?.stepMs).filter((v): v is number => typeof v === 'number');
  expect(steps.length).toBeGreaterThan(0);
  expect(new Set(steps).size).toBe(1);
  return steps[0];
}

/** The refId's frames in the JSON /api/ds/query returned: field names, labels, values, meta. */
function jsonFrames(file: PanelFile, refId: string) {
  type JsonFrame = {
    schema: { meta?: { custom?: Record<string, unknown> }; fields: Array<{ name: string; labels?: Record<string, string> }> };
    data: { values: unknown[][] };
  };
  const result = file.response.results[refId];
  expect(result?.status).toBe(200);
  return (result.frames ?? []) as JsonFrame[];
}

// -- the browser ----------------------------------------------------------------------------------------

let browser: Browser;

beforeAll(async () => {
  fs.writeFileSync(
    path.join(PAGE_DIR, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>Toto Forecast panel</title><div id="root"></div><script src="panel.js"></script>'
  );
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

async function draw(name: string): Promise<{ page: Page; file: PanelFile; state: PanelState; errors: string[] }> {
  const file = JSON.parse(fs.readFileSync(path.join(FRAMES_DIR, `${name}.json`), 'utf8')) as PanelFile;
  const page = await browser.newPage({ viewport: { width: 1040, height: 440 }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(path.join(PAGE_DIR, 'index.html')).href);
  await page.evaluate((f) => window.showPanel(f), file);
  const state = await page.evaluate(() => window.panelState());
  await page.locator('#panel').screenshot({ path: path.join(SHOTS_DIR, `${name}.png`) });
  return { page, file, state, errors };
}

// -- the checks -----------------------------------------------------------------------------------------

function checkSeriesAndLegend(state: PanelState, exp: PanelExpectation) {
  const drawn = exp.series.flatMap((s) => [s.history, s.median, ...s.bands.flat()]);
  expect(state.series.map((s) => s.name).sort()).toEqual([...drawn].sort());
  expect(state.series.every((s) => s.show)).toBe(true);
  // The legend names the history and the median; a band's edges are not lines and stay out of it.
  expect(state.legend.map((l) => l.label)).toEqual(exp.series.flatMap((s) => [s.history, s.median]));
  for (const s of exp.series) {
    const [history, median] = [s.history, s.median].map((n) => state.legend.find((l) => l.label === n)!);
    expect(history.dashed).toBe(false);
    expect(median.dashed).toBe(true);
    expect(rgb(median.color)).toBe(rgb(history.color));
  }
  // One y axis: every field of the panel carries the same unit (the scale key starts with it).
  expect(new Set(state.series.map((s) => s.scale)).size).toBe(1);
  expect(state.series[0].scale.split('/')[0]).toBe(exp.unit || '__fixed');
}

function checkNoNaN(state: PanelState) {
  expect(state.nanValues).toBe(0);
  for (const s of state.series) {
    expect(s.values.every((v) => v === null || Number.isFinite(v))).toBe(true);
  }
  const y = state.scales[state.series[0].scale];
  expect(Number.isFinite(y.min) && Number.isFinite(y.max) && y.max! > y.min!).toBe(true);
}

function checkForecastStart(state: PanelState, file: PanelFile, s: SeriesExpectation) {
  const step = stepOf(state);
  const history = firstAndLast(state, byName(state, s.history));
  const median = firstAndLast(state, byName(state, s.median));
  expect(median.first - history.last).toBe(step);
  for (const edge of s.bands.flat()) {
    expect(firstAndLast(state, byName(state, edge))).toEqual(median);
  }
  expect(median.first).toBeGreaterThanOrEqual(file.from);
  expect(median.first).toBeLessThanOrEqual(file.to);
}

/** Each band is uPlot's band between the upper and lower edge of the same series, filled in the median's
 * colour (translucent), the median inside it, and the canvas shaded there in that colour. */
async function checkBands(page: Page, state: PanelState, file: PanelFile, s: SeriesExpectation) {
  const median = byName(state, s.median);
  const history = byName(state, s.history);
  expect(median.dash?.length).toBeGreaterThan(0);
  expect(history.dash ?? []).toEqual([]);
  expect(rgb(median.stroke)).toBe(rgb(history.stroke));
  let outer: [DrawnSeries, DrawnSeries] | null = null;
  for (const [upperName, lowerName] of s.bands) {
    const [ui, li] = [indexOf(state, upperName), indexOf(state, lowerName)];
    const band = state.bands.find((b) => b.upper === ui && b.lower === li);
    expect(band).toBeDefined();
    const [upper, lower] = [state.series[ui], state.series[li]];
    expect([upper.frameIndex, lower.frameIndex]).toEqual([median.frameIndex, median.frameIndex]);
    expect([upper.width, lower.width]).toEqual([0, 0]);
    const fill = parseColor(band!.fill ?? upper.fill);
    expect(rgb(band!.fill ?? upper.fill)).toBe(rgb(median.stroke));
    expect(fill[3]).toBeGreaterThan(0.05);
    expect(fill[3]).toBeLessThan(0.5);
    // lower <= median <= upper, and an inner band inside the outer one
    median.values.forEach((m, i) => {
      if (m === null) {
        return;
      }
      expect(lower.values[i]!).toBeLessThanOrEqual(m);
      expect(upper.values[i]!).toBeGreaterThanOrEqual(m);
      if (outer) {
        expect(upper.values[i]!).toBeLessThanOrEqual(outer[0].values[i]!);
        expect(lower.values[i]!).toBeGreaterThanOrEqual(outer[1].values[i]!);
      }
    });
    outer = outer ?? [upper, lower];
  }
  // The canvas: a quarter of the way down from the outer band's top, where it is widest on screen, the
  // pixel is the band's colour (translucent over the transparent canvas: its own RGB, alpha > 0).
  const [upper, lower] = outer!;
  // (not at the plot's edges, where the last point can sit on the border)
  const margin = 3 * stepOf(state);
  const visible = (i: number) =>
    median.values[i] !== null && state.times[i] >= file.from + margin && state.times[i] <= file.to - margin;
  let widest = -1;
  median.values.forEach((_, i) => {
    if (visible(i) && (widest < 0 || upper.values[i]! - lower.values[i]! > upper.values[widest]! - lower.values[widest]!)) {
      widest = i;
    }
  });
  expect(widest).toBeGreaterThanOrEqual(0);
  const y = upper.values[widest]! - 0.25 * (upper.values[widest]! - lower.values[widest]!);
  const [pixel] = await page.evaluate((p) => window.pixelsAt(p), [[state.times[widest], y]] as Array<[number, number]>);
  expect(pixel[3]).toBeGreaterThan(10);
  expect(near(pixel.slice(0, 3), parseColor(median.stroke).slice(0, 3), 12)).toBe(true);
}

/** No history in the gap: the values there are missing, uPlot does not bridge them, and the canvas
 * column in the middle of the gap has no pixel of the history's colour. */
async function checkGap(page: Page, state: PanelState, s: SeriesExpectation, [from, to]: [number, number]) {
  const history = byName(state, s.history);
  expect(history.spanGaps).toBe(false);
  const inGap = state.times.flatMap((t, i) => (t >= from && t < to ? [i] : []));
  expect(inGap.length).toBeGreaterThan(0);
  expect(inGap.every((i) => history.values[i] === null)).toBe(true);
  const before = state.times.findIndex((t, i) => t < from && history.values[i] !== null);
  const after = state.times.findIndex((t, i) => t >= to && history.values[i] !== null);
  expect(before).toBeGreaterThanOrEqual(0);
  expect(after).toBeGreaterThanOrEqual(0);
  const color = parseColor(history.stroke).slice(0, 3);
  const column: Rgba[] = await page.evaluate((x) => window.pixelColumn(x), (from + to) / 2);
  expect(column.length).toBeGreaterThan(0);
  expect(column.filter((p) => p[3] > 100 && near(p.slice(0, 3), color, 30))).toEqual([]);
  // the same probe finds the line where there is history
  const drawn: Rgba[] = await page.evaluate((x) => window.pixelColumn(x), state.times[after + 30]);
  expect(drawn.some((p) => p[3] > 100 && near(p.slice(0, 3), color, 30))).toBe(true);
}

/** The panel draws the threshold inside its y range, and the forecast's upper edge crosses it where the
 * plugin's threshold query says the breach comes (or stays under it when it says never). */
function checkThreshold(state: PanelState, file: PanelFile, s: SeriesExpectation, t: NonNullable<PanelExpectation['threshold']>) {
  expect(state.thresholds).toEqual([{ value: t.value, color: t.color }]);
  const y = state.scales[state.series[0].scale];
  expect(y.min!).toBeLessThanOrEqual(t.value);
  expect(y.max!).toBeGreaterThanOrEqual(t.value);
  const [frame] = jsonFrames(file, t.refId);
  const at = frame.schema.fields.findIndex((f) => f.name === 'time_to_breach');
  expect(at).toBeGreaterThanOrEqual(0);
  const seconds = frame.data.values[at][0] as number;
  const sentinel = frame.schema.meta?.custom?.sentinelSeconds as number;
  const upper = byName(state, s.bands[0][0]);
  const last = firstAndLast(state, byName(state, s.history)).last;
  const firstAbove = state.times.find((time, i) => upper.values[i] !== null && upper.values[i]! >= t.value);
  if (seconds < sentinel) {
    expect(firstAbove).toBe(last + seconds * 1000);
  } else {
    expect(firstAbove).toBeUndefined();
  }
}

// -- the panels -----------------------------------------------------------------------------------------

it('every panel the harness answered is checked here', () => {
  const answered = fs.readdirSync(FRAMES_DIR).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
  expect(answered.sort()).toEqual(Object.keys(EXPECTED).sort());
});

describe.each(Object.keys(EXPECTED))('panel %s', (name) => {
  it('draws what the README says a forecast looks like', async () => {
    const exp = EXPECTED[name];
    const { page, file, state, errors } = await draw(name);
    try {
      expect(errors).toEqual([]);
      checkSeriesAndLegend(state, exp);
      checkNoNaN(state);
      for (const s of exp.series) {
        checkForecastStart(state, file, s);
        await checkBands(page, state, file, s);
      }
      if (exp.gap) {
        await checkGap(page, state, exp.series[0], exp.gap);
      }
      if (exp.threshold) {
        checkThreshold(state, file, exp.series[0], exp.threshold);
      }
    } finally {
      await page.close();
    }
  });
});
