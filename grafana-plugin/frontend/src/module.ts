import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { TotoJsonData, TotoQuery, TotoSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, TotoQuery, TotoJsonData, TotoSecureJsonData>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
