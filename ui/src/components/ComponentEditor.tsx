// The form of one component (input, processor, output, buffer, dead letter output, or one nested in another's
// options): its kind, and its options as a form generated from the catalogue's JSON Schema for that kind.
import type { KindDoc, UploadedKind } from '../api/types';
import { isObj, kindOf, optionsOf } from '../lib/config';
import { type FieldError, type Path, equal, fieldId, startsWith, under } from '../lib/paths';
import { defaultFor } from '../lib/schema';
import { Capabilities, GrantsPicker } from './ResourceFields';
import { FieldErrors, SchemaForm } from './SchemaForm';
import { Prose } from './Text';

interface Props {
  /** `Input`, `Processor 2`, ... */
  title: string;
  kinds: KindDoc[];
  /** Uploaded processors, offered with the built-in ones (processors only). */
  uploaded?: UploadedKind[];
  value: unknown;
  onChange: (v: unknown) => void;
  path: Path;
  errors: FieldError[];
  /** Buttons for the component (remove, move). */
  actions?: React.ReactNode;
  /** The kind is chosen elsewhere (the buffer's select). */
  hideKind?: boolean;
  /** What the component is for (a nested one's option description), shown with the picker until a kind is chosen. */
  description?: string;
}

/** The `{kind: options}` value for a kind just chosen. */
export function newComponent(choice: string, kinds: KindDoc[], uploaded: UploadedKind[] = []): Record<string, unknown> {
  if (choice.startsWith('u:')) {
    const u = uploaded.find((x) => x.name === choice.slice(2));
    const config = u ? defaultFor(u.config_schema, u.config_schema) : {};
    return { wasm: { name: choice.slice(2), config: config ?? {} } };
  }
  const k = kinds.find((x) => x.kind === choice);
  const options = k ? defaultFor(k.config_schema, k.config_schema) : {};
  return { [choice]: options ?? {} };
}

/** The select value for a component: `mapping`, or `u:NAME` for an uploaded processor. */
function choiceOf(value: unknown, uploaded?: UploadedKind[]): string {
  const k = kindOf(value);
  if (!k) return '';
  if (k === 'wasm' && uploaded) {
    const o = optionsOf(value);
    if (isObj(o) && typeof o.name === 'string') return `u:${o.name}`;
  }
  return k;
}

export function KindPicker({ kinds, uploaded, onPick, label }: { kinds: KindDoc[]; uploaded?: UploadedKind[]; onPick: (choice: string) => void; label: string }) {
  return (
    <div className="picker" role="list" aria-label={label}>
      {kinds
        .filter((k) => !(uploaded && k.kind === 'wasm'))
        .map((k) => (
          <button type="button" role="listitem" className="pick" key={k.kind} onClick={() => onPick(k.kind)} data-kind={k.kind}>
            <span className="kind">{k.kind}</span>
            <span className="desc">
              <Prose text={firstSentence(k.description)} />
            </span>
          </button>
        ))}
      {uploaded?.map((u) => (
        <button type="button" role="listitem" className="pick uploaded" key={`u:${u.name}`} onClick={() => onPick(`u:${u.name}`)} data-kind={`u:${u.name}`}>
          <span className="kind">
            {u.name} <span className="tag">uploaded v{u.version}</span>
          </span>
          <span className="desc">
            <Prose text={firstSentence(u.description) || 'An uploaded processor'} />
          </span>
          <Capabilities list={u.capabilities} />
        </button>
      ))}
    </div>
  );
}

function firstSentence(s: string): string {
  const m = /^(.*?[.!?])(\s|$)/.exec(s);
  return m ? m[1] : s;
}

export function ComponentEditor(props: Props) {
  const { kinds, uploaded, value, path, errors } = props;
  const kind = kindOf(value);
  const choice = choiceOf(value, uploaded);
  const doc = kinds.find((k) => k.kind === kind);
  const up = choice.startsWith('u:') ? uploaded?.find((u) => `u:${u.name}` === choice) : undefined;
  const optionsPath = kind ? [...path, kind] : path;
  // Errors about the component itself, not one of its options.
  const own = errors.filter((e) => equal(e.path, path) || (kind !== undefined && !startsWith(e.path, optionsPath)));

  const pick = (c: string) => props.onChange(newComponent(c, kinds, uploaded));

  const unknownKind = kind && !doc && !up;
  return (
    <div className="component-editor" id={fieldId(path)}>
      <div className="editor-head">
        <h3>{props.title}</h3>
        {kind && !props.hideKind && (
          <select aria-label={`${props.title} kind`} value={choice} onChange={(e) => pick(e.target.value)}>
            {unknownKind && <option value={choice}>{kind} (unknown)</option>}
            {kinds
              .filter((k) => !(uploaded && k.kind === 'wasm' && !(kind === 'wasm' && !up)))
              .map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            {uploaded && uploaded.length > 0 && (
              <optgroup label="Uploaded">
                {uploaded.map((u) => (
                  <option key={u.name} value={`u:${u.name}`}>
                    {u.name}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        )}
        <div className="spacer" />
        {props.actions}
      </div>
      <FieldErrors errors={own} />
      {!kind && props.description && (
        <p className="help lead">
          <Prose text={props.description} />
        </p>
      )}
      {!kind && <KindPicker kinds={kinds} uploaded={uploaded} onPick={pick} label={`Choose the ${props.title.toLowerCase()}`} />}
      {kind && doc && !up && (
        <>
          <p className="help lead">
            <Prose text={doc.description} />
          </p>
          <SchemaForm
            top
            schema={doc.config_schema}
            root={doc.config_schema}
            value={optionsOf(value)}
            onChange={(v) => props.onChange({ [kind]: v === undefined ? {} : v })}
            path={optionsPath}
            errors={under(errors, optionsPath)}
          />
        </>
      )}
      {up && <UploadedEditor up={up} wasmDoc={kinds.find((k) => k.kind === 'wasm')} value={optionsOf(value)} onChange={(o) => props.onChange({ wasm: o })} path={optionsPath} errors={under(errors, optionsPath)} />}
      {unknownKind && (
        <p className="help warn">
          The catalogue has no {kind} here: edit its options in the YAML view.
          <FieldErrors errors={under(errors, optionsPath)} />
        </p>
      )}
    </div>
  );
}

function sentence(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function UploadedEditor(p: { up: UploadedKind; wasmDoc?: KindDoc; value: unknown; onChange: (v: unknown) => void; path: Path; errors: FieldError[] }) {
  const o = isObj(p.value) ? p.value : {};
  const set = (k: string, v: unknown) => {
    const next = { ...o };
    if (v === undefined) delete next[k];
    else next[k] = v;
    p.onChange(next);
  };
  const configPath = [...p.path, 'config'];
  const limitsPath = [...p.path, 'limits'];
  const grantsPath = [...p.path, 'grants'];
  const rest = p.errors.filter((e) => !startsWith(e.path, configPath) && !startsWith(e.path, limitsPath) && !startsWith(e.path, grantsPath));
  const wasmSchema = p.wasmDoc?.config_schema as Record<string, unknown> | undefined;
  const wasmProps = wasmSchema?.properties as Record<string, { description?: string }> | undefined;
  const limitsSchema = wasmProps?.limits;
  const grantsErrors = under(p.errors, grantsPath);
  const asks = p.up.capabilities ?? [];
  const hasConfigSchema = isObj(p.up.config_schema) && Object.keys(p.up.config_schema).length > 0;
  return (
    <>
      <p className="help lead">
        <Prose text={sentence(p.up.description || 'An uploaded processor')} />{' '}
        {typeof o.version === 'number' ? (
          <>
            Pinned to version {o.version} (latest is {p.up.version}).{' '}
            {o.version !== p.up.version && (
              <button type="button" className="linkish" onClick={() => set('version', p.up.version)}>
                Use version {p.up.version}
              </button>
            )}
          </>
        ) : (
          <>The latest version ({p.up.version}) is pinned when the stream is saved.</>
        )}
      </p>
      <FieldErrors errors={rest} />
      {/* A processor that asks for no capability has no use for grants (unless the config gives some). */}
      {(asks.length > 0 || o.grants !== undefined) && (
        <div className={`field${grantsErrors.length ? ' has-error' : ''}`} id={fieldId(grantsPath)} data-field={grantsPath.join('.')}>
          <span className="field-label">
            grants
            {asks.length > 0 && <span className="req" title="required: it asks for capabilities"> *</span>}
          </span>
          {wasmProps?.grants?.description && (
            <p className="help">
              <Prose text={wasmProps.grants.description} />
            </p>
          )}
          <GrantsPicker id={fieldId(grantsPath) + '-input'} value={o.grants} asks={asks} onChange={(v) => set('grants', v)} />
          <FieldErrors errors={grantsErrors} />
        </div>
      )}
      {hasConfigSchema ? (
        <SchemaForm
          schema={{ ...(p.up.config_schema as object), title: 'config' }}
          root={p.up.config_schema}
          name="config"
          required
          value={o.config}
          onChange={(v) => set('config', v)}
          path={configPath}
          errors={under(p.errors, configPath)}
        />
      ) : (
        <SchemaForm schema={{ title: 'config', description: 'The processor does not describe its config: write it as YAML.' }} root={{}} name="config" value={o.config} onChange={(v) => set('config', v)} path={configPath} errors={under(p.errors, configPath)} />
      )}
      {limitsSchema !== undefined && (
        <details className="limits" open={o.limits !== undefined || under(p.errors, limitsPath).length > 0}>
          <summary>Limits: memory, time and output of each batch</summary>
          {/* The details open and close it: its fields show without an Add button (`required`). */}
          <SchemaForm schema={limitsSchema} root={wasmSchema} name="limits" required value={o.limits} onChange={(v) => set('limits', v)} path={limitsPath} errors={under(p.errors, limitsPath)} />
        </details>
      )}
    </>
  );
}
