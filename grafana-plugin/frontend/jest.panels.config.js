// The browser test of the time-series panels (panels/): Node drives Chromium, so no jsdom and no
// editor setup; run by panels.sh after the Go harness has written the answers.
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testEnvironment: 'node',
  roots: ['<rootDir>/panels'],
  setupFilesAfterEnv: [],
  moduleNameMapper: {},
  // Drawing one panel takes about a second; a loaded 2-core machine can be many times slower.
  testTimeout: 120000,
};
