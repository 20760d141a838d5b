// The backend's query schema, read from where the backend reads it (not a copy), and an ajv validator for it.
import Ajv2020 from 'ajv/dist/2020';
import fs from 'fs';
import path from 'path';

export const SCHEMA_PATH = path.resolve(__dirname, '../../../server/toto_datasource/query.schema.json');
export const schema = JSON.parse(fs.readFileSync(SCHEMA_PATH, 'utf8'));

const validate = new Ajv2020({ allErrors: true, allowUnionTypes: true }).compile(schema);

/** ajv's messages for an invalid query, [] for a valid one. JSON round-trip: what leaves the browser. */
export function schemaErrors(query: unknown): string[] {
  const wire = JSON.parse(JSON.stringify(query));
  return validate(wire) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || 'query'} ${e.message}`);
}
