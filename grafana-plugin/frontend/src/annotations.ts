// Annotation queries: a threshold query used as a dashboard annotation marks each predicted breach window
// (and the forecast start) on every panel. The backend answers a query with `annotation: true` with frames
// of fields time, timeEnd, text, tags, which Grafana's standard processing turns into events by those names.
import { AnnotationQuery, AnnotationSupport } from '@grafana/data';

import { DEFAULT_QUERY, TotoQuery } from './types';

export const DEFAULT_ANNOTATION_QUERY: Partial<TotoQuery> = { ...DEFAULT_QUERY, queryType: 'threshold', includeHistory: false };

export const annotationSupport: AnnotationSupport<TotoQuery> = {
  getDefaultQuery: () => DEFAULT_ANNOTATION_QUERY,

  /** Saved annotations without a target (or from before this support) start as a threshold query. */
  prepareAnnotation(json: AnnotationQuery<TotoQuery>): AnnotationQuery<TotoQuery> {
    const target = json.target ?? { refId: 'Anno', ...DEFAULT_ANNOTATION_QUERY };
    return { ...json, target: { ...target, queryType: target.queryType || 'threshold' } };
  },

  /** The query sent: the saved target, as a threshold query, marked so the backend answers with events. */
  prepareQuery(anno: AnnotationQuery<TotoQuery>): TotoQuery | undefined {
    const target = anno.target;
    if (!target) {
      return undefined;
    }
    return { ...target, refId: target.refId || 'Anno', queryType: target.queryType || 'threshold', annotation: true };
  },
};
