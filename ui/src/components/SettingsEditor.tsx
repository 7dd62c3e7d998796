// Stream-wide settings: the error policy (`on_error`), the buffer, batching, threads and replicas.
import type { Catalogue } from '../api/types';
import { type Config, isObj, ordered } from '../lib/config';
import { type FieldError, under, equal } from '../lib/paths';
import { ComponentEditor, newComponent } from './ComponentEditor';
import { FieldErrors, SchemaForm } from './SchemaForm';

const PIPELINE_SCHEMA = {
  type: 'object',
  properties: {
    batch: {
      type: 'object',
      title: 'batch',
      description: 'How messages are grouped before the processors.',
      properties: {
        size: { type: 'integer', description: 'Most messages in a batch.', default: 256 },
        period: { type: 'string', description: 'Longest a batch waits to fill (`10ms`, `1s`).', default: '10ms' },
      },
    },
    threads: { type: 'integer', description: 'Processor threads for this stream, 1 to 64.', default: 1 },
  },
};

const REPLICAS_SCHEMA = { type: 'integer', description: 'On how many workers the stream runs at once, 1 to 64.', default: 1 };

export function settingsSummary(cfg: Config): string {
  const policy = cfg.on_error === undefined ? 'drop' : isObj(cfg.on_error) ? 'dead letter' : String(cfg.on_error);
  const buffer = isObj(cfg.buffer) ? Object.keys(cfg.buffer)[0] : 'none';
  return `On error: ${policy} · Buffer: ${buffer}`;
}

export function SettingsEditor({ cfg, catalogue, onChange, errors }: { cfg: Config; catalogue: Catalogue; onChange: (c: Config) => void; errors: FieldError[] }) {
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
      </div>
      {isObj(cfg.buffer) && (
        <div className="sub-editor">
          <ComponentEditor title="Buffer options" hideKind kinds={catalogue.buffers} value={cfg.buffer} onChange={(v) => set('buffer', v)} path={['config', 'buffer']} errors={under(errors, ['config', 'buffer'])} />
        </div>
      )}
      <SchemaForm
        top
        schema={PIPELINE_SCHEMA}
        root={PIPELINE_SCHEMA}
        value={pipelineRest}
        onChange={(v) => set('pipeline', { ...(isObj(v) ? v : {}), ...(processors !== undefined ? { processors } : {}) })}
        path={['config', 'pipeline']}
        errors={under(errors, ['config', 'pipeline']).filter((e) => e.path[2] !== 'processors')}
      />
      <SchemaForm schema={REPLICAS_SCHEMA} root={REPLICAS_SCHEMA} name="replicas" value={cfg.replicas} onChange={(v) => set('replicas', v)} path={['config', 'replicas']} errors={under(errors, ['config', 'replicas'])} />
    </div>
  );
}
