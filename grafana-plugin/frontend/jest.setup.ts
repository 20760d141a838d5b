import '@testing-library/jest-dom';
import { TextDecoder, TextEncoder } from 'util';
import { MessageChannel } from 'worker_threads';

// Node globals jsdom leaves out; react-dom/server (imported by @grafana/ui) needs MessageChannel.
Object.assign(global, { TextDecoder, TextEncoder, MessageChannel });

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
