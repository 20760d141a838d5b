import React from 'react';

import { InferenceConfig } from '../config/inference';
import { LimitsConfig } from '../config/limits';
import { ModelConfig } from '../config/model';
import { ConfigPartProps, sourceParts } from '../registry';

export type Props = ConfigPartProps;

/** Each source's own section (connection, credentials), then the model, remote inference, limits. */
export function ConfigEditor(props: Props) {
  const sections = [
    ...sourceParts().flatMap((p) => (p.ConfigPart ? [{ key: p.value, Section: p.ConfigPart }] : [])),
    { key: 'model', Section: ModelConfig },
    { key: 'inference', Section: InferenceConfig },
    { key: 'limits', Section: LimitsConfig },
  ];
  return (
    <div data-testid="toto-config-editor">
      {sections.map(({ key, Section }) => (
        <Section key={key} {...props} />
      ))}
    </div>
  );
}
