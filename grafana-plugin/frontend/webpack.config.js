// Builds src/module.ts into dist/module.js: an AMD module whose dependencies (react, @grafana/*, rxjs, ...)
// are the shared modules Grafana's SystemJS loader provides. Modelled on @grafana/create-plugin's
// webpack + SWC setup, reduced to what this plugin uses (no assets, no CSS files, no lazy chunks).
const path = require('path');
const TerserPlugin = require('terser-webpack-plugin');

const PLUGIN_ID = 'toto-forecast-datasource';

// Modules that Grafana shares with plugins; never bundled.
const externals = [
  'react',
  'react-dom',
  'react/jsx-runtime',
  'rxjs',
  'lodash',
  'moment',
  '@emotion/css',
  '@emotion/react',
  /^@grafana\/(ui|runtime|data|schema)(\/.*)?$/,
];

const swcOptions = {
  jsc: {
    target: 'es2018',
    parser: { syntax: 'typescript', tsx: true },
    transform: { react: { runtime: 'classic' } },
  },
};

module.exports = (env = {}) => ({
  mode: env.production ? 'production' : 'development',
  context: __dirname,
  entry: { module: './src/module.ts' },
  devtool: 'source-map',
  externals,
  externalsType: 'amd',
  module: {
    rules: [{ test: /\.tsx?$/, exclude: /node_modules/, use: { loader: 'swc-loader', options: swcOptions } }],
  },
  resolve: { extensions: ['.ts', '.tsx', '.js'] },
  output: {
    path: path.resolve(__dirname, 'dist'),
    filename: '[name].js',
    library: { type: 'amd' },
    publicPath: `public/plugins/${PLUGIN_ID}/`,
    uniqueName: PLUGIN_ID,
    clean: true,
  },
  optimization: {
    minimize: Boolean(env.production),
    minimizer: [new TerserPlugin({ extractComments: false, terserOptions: { compress: { drop_console: ['log', 'info'] } } })],
  },
  performance: { hints: false },
});
