// A form generated from a JSON Schema: every field with its label, description and the validation errors
// whose path falls on it. Anything the generator has no control for is edited as YAML in place.
import { useEffect, useRef, useState } from 'react';
import YAML from 'yaml';
import { type FieldError, type Path, equal, fieldId, under } from '../lib/paths';
import { type Schema, boundsOf, boundsText, defaultFor, resolve, shapeOf, unwrapNullable, variantIndex, variantLabel } from '../lib/schema';
import { Prose } from './Text';

interface Props {
  schema: unknown;
  root: unknown;
  value: unknown;
  onChange: (v: unknown) => void;
  path: Path;
  errors: FieldError[];
  /** The property name, for the label and for choosing a control. */
  name?: string;
  required?: boolean;
  /** The component's own options (no label, no frame). */
  top?: boolean;
}

const CODE_KEYS = new Set(['source', 'mapping', 'filter', 'condition', 'check', 'program', 'query']);

function isCode(name: string | undefined, s: Schema, value: unknown): boolean {
  const text = `${s.title ?? ''} ${s.description ?? ''}`;
  return (
    (name !== undefined && CODE_KEYS.has(name)) ||
    /\b(VRL|program|condition)\b/.test(text) ||
    (typeof value === 'string' && value.includes('\n'))
  );
}

export function FieldErrors({ errors }: { errors: FieldError[] }) {
  if (errors.length === 0) return null;
  return (
    <div className="field-errors" role="alert">
      {errors.map((e, i) => (
        <pre key={i} className="field-error" data-path={e.text}>
          {e.message}
        </pre>
      ))}
    </div>
  );
}

export function SchemaForm(props: Props) {
  const { root, path, errors, name, required, top } = props;
  const { schema: s, nullable } = unwrapNullable(resolve(props.schema, root), root);
  const shape = shapeOf(s, root);
  const label = (s.title as string | undefined) ?? name;
  const optional = !required || nullable;

  const field = (control: React.ReactNode, mine: FieldError[], opts: { inline?: boolean; note?: React.ReactNode } = {}) => (
    <div className={`field${mine.length ? ' has-error' : ''}${opts.inline ? ' inline' : ''}`} id={fieldId(path)} data-field={path.join('.')}>
      {label && !opts.inline && (
        <label className="field-label" htmlFor={fieldId(path) + '-input'}>
          {label}
          {!optional && <span className="req" title="required"> *</span>}
        </label>
      )}
      {control}
      {s.description && !(top && shape.kind === 'object') && (
        <p className="help">
          <Prose text={s.description as string} />
        </p>
      )}
      {opts.note}
      <FieldErrors errors={mine} />
    </div>
  );

  const inputId = fieldId(path) + '-input';

  switch (shape.kind) {
    case 'object': {
      const obj = props.value && typeof props.value === 'object' && !Array.isArray(props.value) ? (props.value as Record<string, unknown>) : {};
      const keys = new Set(shape.properties.map(([k]) => k));
      const mine = errors.filter((e) => equal(e.path, path) || (e.path.length > path.length && !keys.has(String(e.path[path.length]))));
      const set = (k: string, v: unknown) => {
        const next = { ...obj };
        if (v === undefined) delete next[k];
        else next[k] = v;
        props.onChange(next);
      };
      const body = (
        <>
          {shape.properties.map(([k, p]) => (
            <SchemaForm
              key={k}
              schema={p}
              root={root}
              name={k}
              required={shape.required.has(k)}
              value={obj[k]}
              onChange={(v) => set(k, v)}
              path={[...path, k]}
              errors={under(errors, [...path, k])}
            />
          ))}
          {extraKeys(obj, keys).length > 0 && (
            <p className="help warn">Also set here, not described by the schema: {extraKeys(obj, keys).join(', ')} (edit them in the YAML).</p>
          )}
          <FieldErrors errors={mine} />
        </>
      );
      if (top) return <div className="form-object" id={fieldId(path)}>{body}</div>;
      return (
        <fieldset className="form-object nested" id={fieldId(path)}>
          {label && <legend>{label}</legend>}
          {s.description && (
            <p className="help">
              <Prose text={s.description as string} />
            </p>
          )}
          {body}
        </fieldset>
      );
    }
    case 'variants': {
      const i = Math.max(0, variantIndex(shape.variants, props.value, root));
      const choose = (j: number) => {
        if (j !== i) props.onChange(defaultFor(shape.variants[j], root));
      };
      return (
        <div className="variants" id={fieldId(path)}>
          {label && !top && <div className="field-label">{label}</div>}
          {s.description && !top && (
            <p className="help">
              <Prose text={s.description as string} />
            </p>
          )}
          <div className="segmented small" role="group" aria-label={`${label ?? 'value'} form`}>
            {shape.variants.map((v, j) => (
              <button type="button" key={j} className={j === i ? 'on' : ''} aria-pressed={j === i} onClick={() => choose(j)}>
                {variantLabel(v, root)}
              </button>
            ))}
          </div>
          <SchemaForm schema={{ ...shape.variants[i], description: shape.variants[i].description === s.description ? undefined : shape.variants[i].description }} root={root} value={props.value} onChange={props.onChange} path={path} errors={errors} name={name} required top={top} />
        </div>
      );
    }
    case 'enum': {
      const idx = shape.options.findIndex((o) => o.value === props.value);
      const current = shape.options[idx];
      return field(
        <>
          <select
            id={inputId}
            value={idx < 0 ? '' : String(idx)}
            onChange={(e) => props.onChange(e.target.value === '' ? undefined : shape.options[Number(e.target.value)].value)}
          >
            {(optional || idx < 0) && <option value="">{s.default !== undefined && s.default !== null ? `default (${String(s.default)})` : '—'}</option>}
            {shape.options.map((o, j) => (
              <option key={j} value={String(j)} title={o.description}>
                {o.label}
              </option>
            ))}
          </select>
          {current?.description && (
            <p className="help">
              <Prose text={current.description} />
            </p>
          )}
        </>,
        errors,
      );
    }
    case 'string': {
      const v = typeof props.value === 'string' ? props.value : props.value === undefined ? '' : String(props.value);
      const change = (t: string) =>
        props.onChange(t === '' && optional ? undefined : shape.numeric && /^-?\d+(\.\d+)?$/.test(t.trim()) ? Number(t.trim()) : t);
      const placeholder = s.default !== undefined && s.default !== null ? String(s.default) : (s.examples?.[0] as string | undefined);
      if (isCode(name, s, props.value)) {
        return field(
          <textarea
            id={inputId}
            className="code"
            spellCheck={false}
            rows={Math.min(14, Math.max(4, v.split('\n').length + 1))}
            value={v}
            placeholder={placeholder}
            onChange={(e) => change(e.target.value)}
          />,
          errors,
        );
      }
      return field(<input id={inputId} type="text" value={v} placeholder={placeholder} onChange={(e) => change(e.target.value)} />, errors);
    }
    case 'number': {
      const bounds = boundsOf(s);
      const range = boundsText(bounds);
      const v = props.value;
      const outside = typeof v === 'number' && ((bounds.min !== undefined && v < bounds.min) || (bounds.max !== undefined && v > bounds.max));
      const note = range && (
        <p className={`help bounds${outside ? ' warn' : ''}`}>{outside ? `Out of range: ${range}.` : `${range[0].toUpperCase()}${range.slice(1)}.`}</p>
      );
      return field(
        <NumberInput id={inputId} value={v} integer={shape.integer} placeholder={s.default !== undefined && s.default !== null ? String(s.default) : undefined} onChange={props.onChange} />,
        errors,
        { note },
      );
    }
    case 'boolean': {
      const checked = props.value === undefined ? Boolean(s.default) : Boolean(props.value);
      return field(
        <label className="check">
          <input id={inputId} type="checkbox" checked={checked} onChange={(e) => props.onChange(e.target.checked)} />
          {label}
        </label>,
        errors,
        { inline: true },
      );
    }
    case 'array': {
      const list = Array.isArray(props.value) ? props.value : [];
      const mine = errors.filter((e) => equal(e.path, path) || (e.path.length > path.length && !(typeof e.path[path.length] === 'number' && (e.path[path.length] as number) < list.length)));
      const items = resolve(shape.items, root);
      const itemLabel = (items.title as string | undefined) ?? 'item';
      return (
        <fieldset className="form-object nested" id={fieldId(path)}>
          {label && (
            <legend>
              {label}
              {!optional && <span className="req"> *</span>}
            </legend>
          )}
          {s.description && (
            <p className="help">
              <Prose text={s.description as string} />
            </p>
          )}
          {list.map((item, i) => (
            <div className="array-item" key={i}>
              <div className="array-item-body">
                <SchemaForm
                  schema={{ ...items, title: `${itemLabel} ${i + 1}` }}
                  root={root}
                  value={item}
                  required
                  onChange={(v) => props.onChange(list.map((x, j) => (j === i ? v : x)))}
                  path={[...path, i]}
                  errors={under(errors, [...path, i])}
                />
              </div>
              <button type="button" className="btn small ghost" aria-label={`Remove ${itemLabel} ${i + 1}`} onClick={() => props.onChange(list.filter((_, j) => j !== i))}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" className="btn small" onClick={() => props.onChange([...list, defaultFor(shape.items, root)])}>
            Add {itemLabel}
          </button>
          <FieldErrors errors={mine} />
        </fieldset>
      );
    }
    case 'none':
      return top ? (
        <div className="form-object" id={fieldId(path)}>
          <p className="muted">This kind has no options.</p>
          <FieldErrors errors={errors} />
        </div>
      ) : (
        field(<span className="muted small">no options</span>, errors)
      );
    default:
      return field(<YamlInput id={inputId} value={props.value} onChange={props.onChange} />, errors);
  }
}

function extraKeys(obj: Record<string, unknown>, keys: Set<string>): string[] {
  return Object.keys(obj).filter((k) => !keys.has(k));
}

function NumberInput(p: { id: string; value: unknown; integer: boolean; placeholder?: string; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(p.value === undefined || p.value === null ? '' : String(p.value));
  useEffect(() => {
    const asNumber = text.trim() === '' ? undefined : Number(text);
    if (asNumber !== p.value && !(typeof p.value === 'string' && p.value === text)) {
      setText(p.value === undefined || p.value === null ? '' : String(p.value));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [p.value]);
  return (
    <input
      id={p.id}
      type="text"
      inputMode={p.integer ? 'numeric' : 'decimal'}
      value={text}
      placeholder={p.placeholder}
      onChange={(e) => {
        const t = e.target.value;
        setText(t);
        if (t.trim() === '') p.onChange(undefined);
        else if (!Number.isNaN(Number(t))) p.onChange(Number(t));
        else p.onChange(t); // kept as written: the API says what is wrong with it
      }}
    />
  );
}

/** A value edited as YAML text, for what the schema does not describe field by field. */
export function YamlInput(p: { id?: string; value: unknown; onChange: (v: unknown) => void; rows?: number }) {
  const toText = (v: unknown) => (v === undefined ? '' : YAML.stringify(v, { lineWidth: 0 }).trimEnd());
  const [text, setText] = useState(toText(p.value));
  const [error, setError] = useState<string>();
  const last = useRef<string>(JSON.stringify(p.value));
  useEffect(() => {
    const now = JSON.stringify(p.value);
    if (now !== last.current) {
      last.current = now;
      setText(toText(p.value));
      setError(undefined);
    }
  }, [p.value]);
  return (
    <>
      <textarea
        id={p.id}
        className="code"
        spellCheck={false}
        rows={p.rows ?? Math.min(12, Math.max(3, text.split('\n').length + 1))}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          try {
            const v = e.target.value.trim() === '' ? undefined : YAML.parse(e.target.value);
            setError(undefined);
            last.current = JSON.stringify(v);
            p.onChange(v);
          } catch (err) {
            setError((err as Error).message.split('\n')[0]);
          }
        }}
      />
      {error && <p className="help warn">Not valid YAML yet: {error}</p>}
    </>
  );
}

