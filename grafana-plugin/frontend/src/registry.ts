// Every source and query type the editors offer, in the order they show. A new source or query type is
// its module plus one line here.
import { queryTypeParts, registerQueryType, registerSource, sourceParts } from './parts';
import { anomaly } from './querytypes/anomaly';
import { backtest } from './querytypes/backtest';
import { forecast } from './querytypes/forecast';
import { recorded } from './querytypes/recorded';
import { threshold } from './querytypes/threshold';
import { demo } from './sources/demo';
import { grafana } from './sources/grafana';
import { inline } from './sources/inline';
import { prometheus } from './sources/prometheus';
import { COMMON_QUERY_KEYS } from './types';

registerSource(prometheus);
registerSource(grafana);
registerSource(demo);
registerSource(inline);

registerQueryType(forecast);
registerQueryType(threshold);
registerQueryType(anomaly);
registerQueryType(backtest);
registerQueryType(recorded);

export * from './parts';

/** Every key this plugin puts in a query: the shared ones and each registered part's. */
export function queryKeys(): string[] {
  const parts = [...sourceParts(), ...queryTypeParts()];
  return [...new Set([...COMMON_QUERY_KEYS, ...parts.flatMap((p) => p.queryKeys)])];
}
