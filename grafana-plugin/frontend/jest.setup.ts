import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';
import { TextDecoder, TextEncoder } from 'util';

// react-dom/server (imported by @grafana/ui) schedules with a MessageChannel, which jsdom lacks.
// Node's own would keep Jest from exiting; this one only forwards port2 → port1 on a timer.
class TimerMessageChannel {
  port1: { onmessage: ((e: { data: unknown }) => void) | null } = { onmessage: null };
  port2 = { postMessage: (data: unknown) => setTimeout(() => this.port1.onmessage?.({ data }), 0) };
}

Object.assign(global, { TextDecoder, TextEncoder, MessageChannel: TimerMessageChannel });

// jsdom lacks matchMedia and canvas, which @grafana/ui touches on import.
Object.defineProperty(window, 'matchMedia', {
  writable: true,
  value: (query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => {},
    removeListener: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    dispatchEvent: () => false,
  }),
});
HTMLCanvasElement.prototype.getContext = (() => null) as unknown as typeof HTMLCanvasElement.prototype.getContext;

// Select menus observe their scroll position.
class NoopIntersectionObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
}
Object.assign(window, { IntersectionObserver: NoopIntersectionObserver });

// findBy*/waitFor give up after 1 s by default; a loaded machine needs longer (no test asserts on timing).
configure({ asyncUtilTimeout: 15000 });
