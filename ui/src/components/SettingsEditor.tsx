// Stream-wide settings: the error policy (`on_error`), the buffer, batching, threads and replicas. Batching,
// threads and replicas are forms of the server's stream schema, so their defaults, bounds and descriptions are
// the model's own.
import { useMemo } from 'react';
import type { Catalogue } from '../api/types';
import { type Config, isObj, ordered } from '../lib/config';
import { type FieldError, under, equal } from '../lib/paths';
import { type Schema, propertyOf, unwrapNullable } from '../lib/schema';
import { ComponentEditor, newComponent } from './ComponentEditor';
import { FieldErrors, SchemaForm } from './SchemaForm';
import { Prose } from './Text';
import { ErrorBanner } from './ui';

/**
 * What of the stream's own schema (`GET /api/v1/schema/stream`) this editor renders as forms: `pipeline` without
 * its processors (the pipeline drawing edits those) and `replicas`; and the descriptions of `on_error` and
 * `buffer`, whose controls are its own.
 */
export function settingsSchemas(root: Schema) {
  const pipeline = propertyOf(root, 'pipeline', root);
  let pipelineForm: Schema | undefined;
  if (pipeline) {
    const { schema: p } = unwrapNullable(pipeline, root);
    const { processors: _processors, ...rest } = (isObj(p.properties) ? p.properties : {}) as Record<string, Schema>;
    void _processors;
    if (Object.keys(rest).length > 0) {
      pipelineForm = { ...p, properties: rest, required: Array.isArray(p.required) ? p.required.filter((k: unknown) => k !== 'processors') : [] };
    }
  }
  const description = (key: string): string | undefined => {
    const d = propertyOf(root, key, root)?.description;
    return typeof d === 'string' ? d : undefined;
  };
  return { pipeline: pipelineForm, replicas: propertyOf(root, 'replicas', root), onError: description('on_error'), buffer: description('buffer') };
}

export function settingsSummary(cfg: Config): string {
  const policy = cfg.on_error === undefined ? 'drop' : isObj(cfg.on_error) ? 'dead letter' : String(cfg.on_error);
  const buffer = isObj(cfg.buffer) ? Object.keys(cfg.buffer)[0] : 'none';
  return `On error: ${policy} · Buffer: ${buffer}`;
}

export function SettingsEditor({
  cfg,
  catalogue,
  schema,
  schemaError,
  onChange,
  errors,
}: {
  cfg: Config;
  catalogue: Catalogue;
  /** The stream schema (`GET /api/v1/schema/stream`); undefined while it loads or when it failed. */
  schema: Schema | undefined;
  schemaError: unknown;
  onChange: (c: Config) => void;
  errors: FieldError[];
}) {
  const forms = useMemo(() => (schema ? settingsSchemas(schema) : undefined), [schema]);
  const set = (k: string, v: unknown) => {
    const next = { ...cfg };
    if (v === undefined) delete next[k];
    else next[k] = v;
    onChange(ordered(next));
  };
  const policy = cfg.on_error === undefined ? 'drop' : isObj(cfg.on_error) ? 'dead_letter' : String(cfg.on_error);
  const deadLetter = isObj(cfg.on_error) ? cfg.on_error.dead_letter : undefined;
  const pipeline = isObj(cfg.pipeline) ? cfg.pipeline : {};
  const { processors, ...pipelineRest } = pipeline;

  return (
    <div className="component-editor">
      <div className="editor-head">
        <h3>Stream settings</h3>
      </div>
      <div className="field" id="f-config-on_error">
        <label className="field-label" htmlFor="on-error">
          Error policy (<code>on_error</code>)
        </label>
        <select
          id="on-error"
          value={policy}
          onChange={(e) => {
            const v = e.target.value;
            if (v === 'drop') set('on_error', undefined);
            else if (v === 'stop') set('on_error', 'stop');
            else set('on_error', { dead_letter: { file: { path: 'failed.jsonl', envelope: true } } });
          }}
        >
          <option value="drop">drop: count failed messages and drop them</option>
          <option value="stop">stop: stop the stream at the first failure</option>
          <option value="dead_letter">dead letter: write failed messages to an output</option>
          {!['drop', 'stop', 'dead_letter'].includes(policy) && <option value={policy}>{policy}</option>}
        </select>
        {forms?.onError && (
          <p className="help">
            <Prose text={forms.onError} />
          </p>
        )}
        <FieldErrors errors={errors.filter((e) => equal(e.path, ['config', 'on_error']))} />
      </div>
      {policy === 'dead_letter' && (
        <div className="sub-editor">
          <ComponentEditor
            title="Dead letter output"
            kinds={catalogue.outputs}
            value={deadLetter}
            onChange={(v) => set('on_error', { dead_letter: v })}
            path={['config', 'on_error', 'dead_letter']}
            errors={under(errors, ['config', 'on_error', 'dead_letter'])}
          />
        </div>
      )}
      <div className="field" id="f-config-buffer">
        <label className="field-label" htmlFor="buffer-kind">
          Buffer
        </label>
        <select
          id="buffer-kind"
          value={isObj(cfg.buffer) ? Object.keys(cfg.buffer)[0] : ''}
          onChange={(e) => {
            const k = e.target.value;
            if (!k) set('buffer', undefined);
            else set('buffer', newComponent(k, catalogue.buffers));
          }}
        >
          <option value="">none: the input feeds the processors directly</option>
          {catalogue.buffers.map((b) => (
            <option key={b.kind} value={b.kind}>
              {b.kind}: {b.description.replace(/[.:;].*$/s, '').toLowerCase()}
            </option>
          ))}
        </select>
        {forms?.buffer && (
          <p className="help">
            <Prose text={forms.buffer} />
          </p>
        )}
      </div>
      {isObj(cfg.buffer) && (
        <div className="sub-editor">
          <ComponentEditor title="Buffer options" hideKind kinds={catalogue.buffers} value={cfg.buffer} onChange={(v) => set('buffer', v)} path={['config', 'buffer']} errors={under(errors, ['config', 'buffer'])} />
        </div>
      )}
      {schemaError ? (
        <ErrorBanner error={schemaError} title="Cannot show batching, threads and replicas" />
      ) : !schema || !forms ? (
        <p className="muted small">Loading batching, threads and replicas…</p>
      ) : (
        <>
          {forms.pipeline && (
            <SchemaForm
              top
              schema={forms.pipeline}
              root={schema}
              value={pipelineRest}
              onChange={(v) => set('pipeline', { ...(isObj(v) ? v : {}), ...(processors !== undefined ? { processors } : {}) })}
              path={['config', 'pipeline']}
              errors={under(errors, ['config', 'pipeline']).filter((e) => e.path[2] !== 'processors')}
            />
          )}
          {forms.replicas && (
            <SchemaForm schema={forms.replicas} root={schema} name="replicas" value={cfg.replicas} onChange={(v) => set('replicas', v)} path={['config', 'replicas']} errors={under(errors, ['config', 'replicas'])} />
          )}
        </>
      )}
    </div>
  );
}
