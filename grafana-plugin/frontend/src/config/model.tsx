import React from 'react';
import { FieldSet, InlineField, Input, RadioButtonGroup } from '@grafana/ui';

import { ConfigPartProps } from '../parts';
import { DEFAULT_MODEL, Device, DType } from '../types';
import { configHelpers, LABEL } from './helpers';

const DEVICE_OPTIONS: Array<{ label: string; value: Device }> = [
  { label: 'Auto', value: 'auto' },
  { label: 'CPU', value: 'cpu' },
  { label: 'CUDA', value: 'cuda' },
];
const DTYPE_OPTIONS: Array<{ label: string; value: DType }> = [
  { label: 'float32', value: 'float32' },
  { label: 'bfloat16', value: 'bfloat16' },
];

/** The in-process model: checkpoint, device, precision. */
export function ModelConfig(props: ConfigPartProps) {
  const { jsonData, setJson } = configHelpers(props);
  return (
    <FieldSet label="Model">
      <InlineField
        label="Checkpoint"
        labelWidth={LABEL}
        tooltip="A Hugging Face hub id, or a local checkpoint directory on the Grafana server (air-gapped installs). [plugin.toto-forecast-datasource] model in grafana.ini overrides it."
      >
        <Input
          aria-label="Model"
          width={48}
          placeholder={DEFAULT_MODEL}
          value={jsonData.model ?? ''}
          onChange={(e) => setJson({ model: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Device" labelWidth={LABEL}>
        <RadioButtonGroup options={DEVICE_OPTIONS} value={jsonData.device ?? 'auto'} onChange={(device) => setJson({ device })} />
      </InlineField>
      <InlineField label="Precision" labelWidth={LABEL} tooltip="bfloat16 halves memory on GPUs that support it.">
        <RadioButtonGroup options={DTYPE_OPTIONS} value={jsonData.dtype ?? 'float32'} onChange={(dtype) => setJson({ dtype })} />
      </InlineField>
    </FieldSet>
  );
}
