// The time-series panels the browser test draws (panel.tsx), as a dashboard stores them: which queries
// the panel shows and its fieldConfig. `timeSeriesDefaults` is the fieldConfig Grafana writes for a new
// Time series panel (Dashboard JSON model); each panel adds only what a user would set.
import { FieldConfigSource, ThresholdsMode } from '@grafana/data';

export interface PanelDefinition {
  /** refIds drawn on the time-series panel; other refIds of the response are read by the test only */
  refIds: string[];
  fieldConfig: FieldConfigSource;
}

export const timeSeriesDefaults: FieldConfigSource = {
  defaults: {
    color: { mode: 'palette-classic' },
    mappings: [],
    thresholds: {
      mode: ThresholdsMode.Absolute,
      steps: [
        { color: 'green', value: -Infinity },
        { color: 'red', value: 80 },
      ],
    },
    custom: {
      axisBorderShow: false,
      axisCenteredZero: false,
      axisColorMode: 'text',
      axisLabel: '',
      axisPlacement: 'auto',
      barAlignment: 0,
      barWidthFactor: 0.6,
      drawStyle: 'line',
      fillOpacity: 0,
      gradientMode: 'none',
      hideFrom: { legend: false, tooltip: false, viz: false },
      insertNulls: false,
      lineInterpolation: 'linear',
      lineWidth: 1,
      pointSize: 5,
      scaleDistribution: { type: 'linear' },
      showPoints: 'auto',
      showValues: false,
      spanNulls: false,
      stacking: { group: 'A', mode: 'none' },
      thresholdsStyle: { mode: 'off' },
    },
  },
  overrides: [],
};

function withDefaults(defaults: FieldConfigSource['defaults']): FieldConfigSource {
  const base = timeSeriesDefaults.defaults;
  return {
    defaults: { ...base, ...defaults, custom: { ...base.custom, ...defaults.custom } },
    overrides: [],
  };
}

export const PANELS: Record<string, PanelDefinition> = {
  forecast: { refIds: ['A'], fieldConfig: timeSeriesDefaults },
  'two-bands': { refIds: ['A'], fieldConfig: timeSeriesDefaults },
  'labelled-series': { refIds: ['A'], fieldConfig: timeSeriesDefaults },
  'history-gap': { refIds: ['A'], fieldConfig: timeSeriesDefaults },
  // The overload line as a user draws it: the panel's thresholds, shown as a line.
  threshold: {
    refIds: ['A'],
    fieldConfig: withDefaults({
      thresholds: {
        mode: ThresholdsMode.Absolute,
        steps: [
          { color: 'green', value: -Infinity },
          { color: 'red', value: 500 },
        ],
      },
      custom: { thresholdsStyle: { mode: 'line' } },
    }),
  },
};
