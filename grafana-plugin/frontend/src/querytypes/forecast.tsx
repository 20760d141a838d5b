import { QueryTypePart } from '../parts';

/** Median and quantile band from now on: all its fields are the shared ones. */
export const forecast: QueryTypePart = {
  value: 'forecast',
  label: 'Forecast',
  description: 'Median and quantile band',
  queryKeys: [],
  drawsFuture: true,
};
