// What the panel page (panel.tsx) reports to the browser test (panels/panels.test.ts).

/** One case as the Go harness writes it: the panel's range and the JSON /api/ds/query returns. */
export interface PanelFile {
  name: string;
  title: string;
  from: number;
  to: number;
  response: { results: Record<string, { status?: number; error?: string; frames?: unknown[] }> };
}

/** uPlot's view of one drawn series (index 0 of uPlot's series is the x axis and is left out). */
export interface DrawnSeries {
  /** the display name Grafana gives the field (getFieldDisplayName), the legend's and tooltip's name */
  name: string;
  /** the frame (after the panel's processing) and field the series comes from */
  frameIndex: number;
  fieldIndex: number;
  /** resolved CSS colours; fill is null when the series fills nothing */
  stroke: string | null;
  fill: string | null;
  width: number;
  dash: number[] | null;
  show: boolean;
  spanGaps: boolean;
  scale: string;
  /** y values on the panel's joined time axis (null: no point there) */
  values: Array<number | null>;
}

export interface LegendEntry {
  label: string;
  /** the colour of the legend's series icon, and whether the icon shows a dashed line */
  color: string;
  dashed: boolean;
}

export interface PanelState {
  /** x values (epoch ms) of the joined frame the panel draws */
  times: number[];
  series: DrawnSeries[];
  /** uPlot's bands: indices into `series` of the upper and lower edge; uPlot fills a band with
   * `fill`, or with the upper series' fill when that is null */
  bands: Array<{ upper: number; lower: number; fill: string | null }>;
  legend: LegendEntry[];
  /** every scale's range after drawing */
  scales: Record<string, { min: number | null; max: number | null }>;
  /** the frame meta the plugin sent with each frame shown (notices, custom) */
  meta: Array<{ custom?: Record<string, unknown>; notices?: Array<{ severity?: string; text: string }> }>;
  /** thresholds the panel draws (value, colour), when its thresholdsStyle is on */
  thresholds: Array<{ value: number; color: string }>;
  /** NaN values anywhere in the frames after the browser decoded the JSON (a NaN is drawn as a gap
   * by the time-series panel but shown as "NaN" by stat and table panels) */
  nanValues: number;
}

/** RGBA (0-255, not premultiplied) of a canvas pixel. */
export type Rgba = [number, number, number, number];
