import { DURATION_RE, Span } from './types';

export type Parsed<T> = { value?: T; error?: string };

/** Text from an input → a schema-valid span: a duration ("2h") or a whole number of steps; "" → unset. */
export function parseSpan(text: string, maxSteps: number): Parsed<Span> {
  const t = text.trim();
  if (t === '') {
    return {};
  }
  if (/^[0-9]+$/.test(t)) {
    const n = Number(t);
    return n >= 1 && n <= maxSteps ? { value: n } : { error: `Steps must be 1-${maxSteps}` };
  }
  return DURATION_RE.test(t) ? { value: t } : { error: 'Expected a duration such as 30m, 2h, 7d, or a number of steps' };
}

export function parseDuration(text: string): Parsed<string> {
  const t = text.trim();
  if (t === '') {
    return {};
  }
  return DURATION_RE.test(t) ? { value: t } : { error: 'Expected a duration such as 15s, 1m, 1h' };
}

export function parseInteger(text: string, min: number, max: number): Parsed<number> {
  const t = text.trim();
  if (t === '') {
    return {};
  }
  const n = Number(t);
  return Number.isInteger(n) && n >= min && n <= max ? { value: n } : { error: `Expected a whole number, ${min}-${max}` };
}

export function parseNumber(text: string): Parsed<number> {
  const t = text.trim();
  if (t === '') {
    return {};
  }
  const n = Number(t);
  return Number.isFinite(n) ? { value: n } : { error: 'Expected a number' };
}
