// The backend's query schema, read from where the backend reads it (not a copy), and an ajv validator for it.
// Properties the frontend already emits but the backend's schema does not have yet live in
// schema.pending.json beside this file; each replaces the schema's property of the same name until the
// backend folds them in and the file is deleted.
import Ajv2020 from 'ajv/dist/2020';
import fs from 'fs';
import path from 'path';

export const SCHEMA_PATH = path.resolve(__dirname, '../../../server/toto_datasource/query.schema.json');
export const PENDING_PATH = path.resolve(__dirname, 'schema.pending.json');

const backend = JSON.parse(fs.readFileSync(SCHEMA_PATH, 'utf8'));
export const pending: { properties: Record<string, unknown> } = fs.existsSync(PENDING_PATH)
  ? JSON.parse(fs.readFileSync(PENDING_PATH, 'utf8'))
  : { properties: {} };
export const schema = { ...backend, properties: { ...backend.properties, ...pending.properties } };

const validate = new Ajv2020({ allErrors: true, allowUnionTypes: true }).compile(schema);

/** ajv's messages for an invalid query, [] for a valid one. JSON round-trip: what leaves the browser. */
export function schemaErrors(query: unknown): string[] {
  const wire = JSON.parse(JSON.stringify(query));
  return validate(wire) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || 'query'} ${e.message}`);
}
