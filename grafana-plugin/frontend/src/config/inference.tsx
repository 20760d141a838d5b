import React from 'react';
import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { FieldSet, InlineField, InlineSwitch, Input, SecretInput, SecretTextArea, useStyles2 } from '@grafana/ui';

import { ConfigPartProps } from '../parts';
import { configHelpers, LABEL } from './helpers';

export const DEFAULT_INFERENCE_MODEL = 'toto';

declare module '../types' {
  interface TotoJsonData {
    /** Open Inference Protocol v2 gRPC endpoint (Ray Serve, KServe, Triton); empty: the model runs in-process. */
    inferenceUrl?: string;
    /** Model name on that server. */
    inferenceModel?: string;
    inferenceTlsSkipVerify?: boolean;
  }
  interface TotoSecureJsonData {
    inferenceToken?: string;
    inferenceTlsCACert?: string;
  }
}

/** A remote serving engine instead of the in-process model. */
export function InferenceConfig(props: ConfigPartProps) {
  const { jsonData, setJson, secretProps } = configHelpers(props);
  const styles = useStyles2(getStyles);
  const remote = Boolean(jsonData.inferenceUrl?.trim());
  return (
    <FieldSet label="Remote inference (optional)">
      <div className={styles.help}>
        Leave the URL empty to run the model inside the plugin (the default). Set it to send prepared batches to a
        serving engine that speaks the Open Inference Protocol v2 over gRPC (Ray Serve, KServe, Triton); the
        plugin still fetches history, caches and builds the frames. The engine loads its own checkpoint: the
        Model section above then does not apply.
      </div>
      <InlineField label="Inference URL" labelWidth={LABEL} tooltip="host:port of the engine's gRPC endpoint, e.g. grpc://serve.ml:9000; grpcs:// for TLS.">
        <Input
          aria-label="Inference URL"
          width={48}
          placeholder="empty: in-process (default)"
          value={jsonData.inferenceUrl ?? ''}
          onChange={(e) => setJson({ inferenceUrl: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Engine model" labelWidth={LABEL} disabled={!remote} tooltip="The model's name on the engine (ModelInfer model_name).">
        <Input
          aria-label="Engine model"
          width={24}
          placeholder={DEFAULT_INFERENCE_MODEL}
          value={jsonData.inferenceModel ?? ''}
          onChange={(e) => setJson({ inferenceModel: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Engine token" labelWidth={LABEL} tooltip="Sent as authorization: Bearer <token> gRPC metadata.">
        <SecretInput width={48} {...secretProps('inferenceToken', 'Engine token')} />
      </InlineField>
      <InlineField label="Skip engine TLS verify" labelWidth={LABEL}>
        <InlineSwitch
          aria-label="Skip engine TLS verify"
          value={jsonData.inferenceTlsSkipVerify ?? false}
          onChange={(e) => setJson({ inferenceTlsSkipVerify: e.currentTarget.checked })}
        />
      </InlineField>
      <InlineField label="Engine CA certificate" labelWidth={LABEL} tooltip="PEM of the CA that signed the engine's certificate.">
        <SecretTextArea cols={48} rows={3} placeholder="-----BEGIN CERTIFICATE-----" {...secretProps('inferenceTlsCACert', 'Engine CA certificate')} />
      </InlineField>
    </FieldSet>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  help: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, maxWidth: 720, marginBottom: theme.spacing(1) }),
});
