// Unit tests of the editors (jsdom + React Testing Library) and the AMD-load test of dist/module.js.
const path = require('path');

process.env.TZ = 'UTC';

// Packages pulled in by @grafana/* that ship only ES modules and must go through SWC.
const esmPackages = ['@grafana/schema', 'd3', 'd3-[a-z-]+', 'internmap', 'marked', 'ol', 'rxjs', 'uuid', 'memoize', 'mimic-function'];

module.exports = {
  testEnvironment: 'jest-environment-jsdom',
  roots: ['<rootDir>/tests'],
  setupFilesAfterEnv: ['<rootDir>/jest.setup.ts'],
  moduleNameMapper: {
    // @grafana/ui's icons fetch SVG files; render a plain placeholder instead.
    '^react-inlinesvg$': path.join(__dirname, 'tests', 'mocks', 'react-inlinesvg.tsx'),
  },
  transform: {
    '^.+\\.(m?js|tsx?|jsx)$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'classic' } } } },
    ],
  },
  transformIgnorePatterns: [`node_modules/(?!(${esmPackages.join('|')})/)`],
};
