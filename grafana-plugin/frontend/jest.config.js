// Unit tests of the editors (jsdom + React Testing Library) and the AMD-load test of dist/module.js.
const fs = require('fs');
const path = require('path');

process.env.TZ = 'UTC';

// Packages pulled in by @grafana/* that ship ES modules only ("type": "module", or .mjs entry points)
// must go through SWC too. Found by scanning node_modules, so a version bump needs no edits here.
function esmPackages() {
  const root = path.join(__dirname, 'node_modules');
  const names = fs.readdirSync(root).flatMap((d) =>
    d.startsWith('@') ? fs.readdirSync(path.join(root, d)).map((s) => `${d}/${s}`) : [d]
  );
  return names.filter((name) => {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, name, 'package.json'), 'utf8'));
      return pkg.type === 'module' || /\.mjs$/.test(pkg.main ?? '');
    } catch {
      return false;
    }
  });
}
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');

module.exports = {
  testEnvironment: 'jest-environment-jsdom',
  roots: ['<rootDir>/tests'],
  // Generous: the editor tests take 2-5 s each on an idle 2-core machine and 5x that on a shared, loaded one.
  testTimeout: 120000,
  setupFilesAfterEnv: ['<rootDir>/jest.setup.ts'],
  moduleNameMapper: {
    '\\.css$': path.join(__dirname, 'tests', 'mocks', 'style.js'),
    // @grafana/ui's icons fetch SVG files; render a plain placeholder instead.
    '^react-inlinesvg$': path.join(__dirname, 'tests', 'mocks', 'react-inlinesvg.tsx'),
  },
  transform: {
    '^.+\\.(m?js|tsx?|jsx)$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'classic' } } } },
    ],
  },
  transformIgnorePatterns: [`node_modules/(?!(${['@grafana/schema', ...esmPackages()].map(escape).join('|')})/)`],
};
