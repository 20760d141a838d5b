import React from 'react';

import { parseNumber } from '../spans';
import { ConfigPartProps } from '../parts';
import { TotoJsonData, TotoSecureJsonData } from '../types';

export const LABEL = 20;
export type SecretKey = Extract<keyof TotoSecureJsonData, string>;

/** Setters every config section uses: patch jsonData, set or reset one secret. */
export function configHelpers({ options, onOptionsChange }: ConfigPartProps) {
  const jsonData = options.jsonData;
  const secureJsonFields = options.secureJsonFields ?? {};
  const secureJsonData: Partial<Record<SecretKey, string>> = options.secureJsonData ?? {};

  const setJson = (patch: Partial<TotoJsonData>) => onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const setSecret = (key: SecretKey, value: string) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: value } });
  const resetSecret = (key: SecretKey) =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });
  /** Props for a SecretInput / SecretTextArea bound to one secureJsonData key. */
  const secretProps = (key: SecretKey, label: string) => ({
    'aria-label': label,
    isConfigured: Boolean(secureJsonFields[key]),
    value: secureJsonData[key] ?? '',
    onReset: () => resetSecret(key),
    onChange: (e: React.FormEvent<HTMLInputElement | HTMLTextAreaElement>) => setSecret(key, e.currentTarget.value),
  });
  return { jsonData, setJson, secretProps };
}

/** A number parser that also checks the range. */
export const inRange = (min: number, max: number) => (t: string) => {
  const p = parseNumber(t);
  return p.value !== undefined && (p.value < min || p.value > max) ? { error: `Expected ${min}-${max}` } : p;
};
