// Bundles the screenshot pages with React and @grafana/* included (no Grafana to provide them):
// harness.tsx (the editors, screenshot.sh) and panel.tsx (time-series panels, panels.sh).
// `--env page=panel` builds one of them.
const path = require('path');

const PAGES = { harness: './harness.tsx', panel: './panel.tsx' };

module.exports = (env = {}) => ({
  mode: 'production',
  context: __dirname,
  entry: env.page ? { [env.page]: PAGES[env.page] } : PAGES,
  output: { path: path.resolve(__dirname, '../.screenshot-build', env.page ?? ''), filename: '[name].js', clean: true },
  module: {
    rules: [
      {
        test: /\.tsx?$/,
        exclude: /node_modules/,
        use: {
          loader: 'swc-loader',
          options: { jsc: { target: 'es2020', parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'classic' } } } },
        },
      },
      { test: /\.css$/, type: 'asset/source' },
    ],
  },
  resolve: { extensions: ['.ts', '.tsx', '.js'], fallback: { fs: false, path: false, os: false } },
  optimization: { minimize: false },
  performance: { hints: false },
  stats: 'errors-warnings',
});
