import React, { useEffect, useState } from 'react';
import { InlineField, Input } from '@grafana/ui';

import { Parsed } from '../spans';

interface Props<T> {
  label: string;
  tooltip?: string;
  labelWidth?: number;
  width?: number;
  placeholder?: string;
  value: T | undefined;
  /** Text → value; an error keeps the text on screen and emits nothing. */
  parse: (text: string) => Parsed<T>;
  /** Called on blur or Enter with the parsed value (undefined when cleared). */
  onCommit: (value: T | undefined) => void;
}

/** A text input that emits only values that parse, so the query never holds a half-typed or invalid value. */
export function CommitInput<T extends string | number>(props: Props<T>) {
  const { label, tooltip, labelWidth = 14, width = 12, placeholder, value, parse, onCommit } = props;
  const [text, setText] = useState(value === undefined ? '' : String(value));
  const [error, setError] = useState<string>();

  useEffect(() => {
    setText(value === undefined ? '' : String(value));
    setError(undefined);
  }, [value]);

  const commit = () => {
    const parsed = parse(text);
    setError(parsed.error);
    if (!parsed.error && parsed.value !== value) {
      onCommit(parsed.value);
    }
  };

  return (
    <InlineField label={label} tooltip={tooltip} labelWidth={labelWidth} invalid={Boolean(error)} error={error}>
      <Input
        aria-label={label}
        width={width}
        placeholder={placeholder}
        value={text}
        onChange={(e) => setText(e.currentTarget.value)}
        onBlur={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
      />
    </InlineField>
  );
}
