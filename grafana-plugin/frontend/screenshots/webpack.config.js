// Bundles harness.tsx with React and @grafana/* included (no Grafana to provide them) for screenshot.sh.
const path = require('path');

module.exports = {
  mode: 'production',
  context: __dirname,
  entry: './harness.tsx',
  output: { path: path.resolve(__dirname, '../.screenshot-build'), filename: 'harness.js', clean: true },
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
};
