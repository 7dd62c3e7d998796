// A form generated from a JSON Schema: every field with its label, description and the validation errors
// whose path falls on it. An optional object stays closed until it is added; a map is edited entry by entry; an
// option that holds components (`x-airtruct-component`) is edited as those components; one that names a resource
// of the stream (`x-airtruct-resource`), and a `wasm` processor's `grants`, are chosen among the declared resources.
// Anything the generator has no control for is edited as YAML in place.
import { useContext, useEffect, useRef, useState } from 'react';
import YAML from 'yaml';
import { type FieldError, type Path, equal, fieldId, formatPath, under } from '../lib/paths';
import { type Schema, boundsOf, boundsText, componentRole, defaultFor, hasDefault, resolve, shapeOf, unwrapNullable, variantIndex, variantLabel } from '../lib/schema';
import { CatalogueContext, ComponentField, ComponentList, kindsOf } from './NestedComponents';
import { GrantsPicker, ResourceSelect, ResourcesContext } from './ResourceFields';
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
  const catalogue = useContext(CatalogueContext);
  const resources = useContext(ResourcesContext);

  // Components in the options (a switch case's `output`, a broker's `outputs`, a case's `processors`): one editor
  // per component. The options of a `try` or `catch` are such a list themselves: their kind's editor already says
  // what they are for, and the schema's title is a type name.
  const role = componentRole(s);
  if (role && catalogue) {
    const nested = {
      role,
      ...kindsOf(catalogue, role),
      label: top ? (shape.kind === 'array' ? `${role}s` : role) : (label ?? role),
      description: top ? undefined : (s.description as string | undefined),
      optional,
      value: props.value,
      onChange: props.onChange,
      path,
      errors,
    };
    return shape.kind === 'array' ? <ComponentList {...nested} /> : <ComponentField {...nested} />;
  }

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
  const description = s.description && (
    <p className="help">
      <Prose text={s.description as string} />
    </p>
  );

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
      // An optional object without a default of its own (`sasl: Option<KafkaSasl>`) is there only when added:
      // absent, it is closed and none of its fields (nor their required marks) show.
      const closable = optional && !hasDefault(s);
      const absent = props.value === undefined || props.value === null;
      const what = label ?? 'options';
      if (closable && absent) {
        return (
          <Group path={path} label={label} closed>
            {description}
            <button type="button" className="btn small" onClick={() => props.onChange(defaultFor(s, root) ?? {})}>
              Add {what}
            </button>
            <FieldErrors errors={errors} />
          </Group>
        );
      }
      return (
        <Group path={path} label={label}>
          {closable ? (
            <div className="object-head">
              {description || <span />}
              <button type="button" className="btn small ghost" aria-label={`Remove ${what}`} onClick={() => props.onChange(undefined)}>
                Remove
              </button>
            </div>
          ) : (
            description
          )}
          {body}
        </Group>
      );
    }
    case 'map':
      return (
        <Group path={path} label={label} required={!optional}>
          {description}
          <MapInput values={shape.values} root={root} value={props.value} optional={optional} onChange={props.onChange} path={path} errors={errors} />
        </Group>
      );
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
      // A resource of the stream's (`x-airtruct-resource: cache`): chosen among those declared.
      const capability = s['x-airtruct-resource'];
      if (typeof capability === 'string' && resources) {
        return field(<ResourceSelect id={inputId} label={label ?? 'resource'} capability={capability} value={props.value} onChange={(t) => change(t ?? '')} />, errors);
      }
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
      // A `wasm` processor's `grants`: chosen among every resource the stream declares.
      if (resources && isGrants(path)) {
        return field(<GrantsPicker id={inputId} value={props.value} onChange={props.onChange} />, errors);
      }
      const list = Array.isArray(props.value) ? props.value : [];
      const mine = errors.filter((e) => equal(e.path, path) || (e.path.length > path.length && !(typeof e.path[path.length] === 'number' && (e.path[path.length] as number) < list.length)));
      const items = resolve(shape.items, root);
      const itemLabel = (items.title as string | undefined) ?? 'item';
      return (
        <Group path={path} label={label} required={!optional}>
          {description}
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
        </Group>
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

/** Whether the field at `path` is a `wasm` processor's `grants`. */
export function isGrants(path: Path): boolean {
  return path.length >= 2 && path[path.length - 1] === 'grants' && path[path.length - 2] === 'wasm';
}

/** A nested group of fields: a fieldset with its legend (`*` when it is required); `closed` for an optional one not
 * yet added. */
export function Group(p: { path: Path; label?: string; required?: boolean; closed?: boolean; children: React.ReactNode }) {
  return (
    <fieldset className={`form-object nested${p.closed ? ' closed' : ''}`} id={fieldId(p.path)} data-field={p.path.join('.')}>
      {p.label && (
        <legend>
          {p.label}
          {p.required && <span className="req"> *</span>}
        </legend>
      )}
      {p.children}
    </fieldset>
  );
}

function extraKeys(obj: Record<string, unknown>, keys: Set<string>): string[] {
  return Object.keys(obj).filter((k) => !keys.has(k));
}

interface Entry {
  /** A React key: the key itself changes as it is typed. */
  id: number;
  key: string;
  value: unknown;
}

/** JSON with object keys sorted: the same map whatever the order of its entries. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  ) ?? '';
}

/**
 * A map (`additionalProperties`, a `HashMap` in Rust) as rows of a key and a value. Every key must be given and
 * differ from the others: until they do, the rows say what is wrong and the value is left as it was. A row with
 * neither key nor value (one just added) is not part of the value yet.
 */
function MapInput(p: { values: Schema; root: unknown; value: unknown; optional: boolean; onChange: (v: unknown) => void; path: Path; errors: FieldError[] }) {
  const ids = useRef(0);
  const toEntries = (v: unknown): Entry[] =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v as Record<string, unknown>).map(([key, value]) => ({ id: ids.current++, key, value })) : [];
  const [entries, setEntries] = useState<Entry[]>(() => toEntries(p.value));
  const last = useRef(canonical(p.value));
  useEffect(() => {
    const now = canonical(p.value);
    if (now !== last.current) {
      last.current = now;
      setEntries(toEntries(p.value));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [p.value]);
  const empty = canonical(defaultFor(p.values, p.root));
  const blank = (e: Entry) => e.key === '' && (e.value === undefined || e.value === null || e.value === '' || canonical(e.value) === empty);
  const problems = (list: Entry[]) =>
    list.map((e, i) => {
      if (blank(e)) return undefined;
      if (e.key === '') return 'This entry needs a key.';
      if (list.slice(0, i).some((o) => o.key === e.key)) return `The key "${e.key}" is already used above.`;
      return undefined;
    });
  const update = (next: Entry[]) => {
    setEntries(next);
    if (problems(next).some((x) => x !== undefined)) return;
    const obj = Object.fromEntries(next.filter((e) => !blank(e)).map((e) => [e.key, e.value]));
    const v = Object.keys(obj).length === 0 && p.optional ? undefined : obj;
    last.current = canonical(v);
    p.onChange(v);
  };
  const mine = problems(entries);
  const keyed = new Set(entries.filter((e) => e.key !== '').map((e) => e.key));
  const rest = p.errors.filter((e) => !(e.path.length > p.path.length && keyed.has(String(e.path[p.path.length]))));
  return (
    <>
      {entries.length > 0 && (
        <div className="map-entries">
          {entries.map((e, i) => {
            const problem = mine[i];
            const own: FieldError[] = [
              ...(problem ? [{ path: [...p.path, e.key], text: formatPath([...p.path, e.key]), message: problem }] : []),
              ...(e.key === '' || entries.findIndex((o) => o.key === e.key) !== i ? [] : under(p.errors, [...p.path, e.key])),
            ];
            const set = (patch: Partial<Entry>) => update(entries.map((o, j) => (j === i ? { ...o, ...patch } : o)));
            return (
              <div className={`map-entry${own.length ? ' has-error' : ''}`} key={e.id} data-entry={i + 1}>
                <div className="map-entry-row">
                  <input type="text" className="map-key" aria-label={`Key ${i + 1}`} placeholder="key" value={e.key} onChange={(ev) => set({ key: ev.target.value })} />
                  <EntryValue schema={p.values} root={p.root} label={`Value ${i + 1}`} value={e.value} onChange={(v) => set({ value: v })} />
                  <button type="button" className="btn small ghost" aria-label={`Remove entry ${i + 1}`} onClick={() => update(entries.filter((_, j) => j !== i))}>
                    Remove
                  </button>
                </div>
                <FieldErrors errors={own} />
              </div>
            );
          })}
        </div>
      )}
      <button type="button" className="btn small" onClick={() => setEntries([...entries, { id: ids.current++, key: '', value: defaultFor(p.values, p.root) }])}>
        Add entry
      </button>
      <FieldErrors errors={rest} />
    </>
  );
}

/** The value of a map entry: a control of its own for a simple value, YAML for the rest. */
function EntryValue(p: { schema: Schema; root: unknown; label: string; value: unknown; onChange: (v: unknown) => void }) {
  const { schema: s } = unwrapNullable(resolve(p.schema, p.root), p.root);
  const shape = shapeOf(s, p.root);
  switch (shape.kind) {
    case 'string': {
      const v = typeof p.value === 'string' ? p.value : p.value === undefined || p.value === null ? '' : String(p.value);
      return (
        <input
          type="text"
          aria-label={p.label}
          placeholder="value"
          value={v}
          onChange={(e) => p.onChange(shape.numeric && /^-?\d+(\.\d+)?$/.test(e.target.value.trim()) ? Number(e.target.value.trim()) : e.target.value)}
        />
      );
    }
    case 'number':
      return <NumberInput label={p.label} value={p.value} integer={shape.integer} placeholder="value" onChange={p.onChange} />;
    case 'boolean':
      return (
        <label className="check">
          <input type="checkbox" aria-label={p.label} checked={Boolean(p.value)} onChange={(e) => p.onChange(e.target.checked)} />
        </label>
      );
    case 'enum': {
      const idx = shape.options.findIndex((o) => o.value === p.value);
      return (
        <select aria-label={p.label} value={idx < 0 ? '' : String(idx)} onChange={(e) => p.onChange(e.target.value === '' ? undefined : shape.options[Number(e.target.value)].value)}>
          {idx < 0 && <option value="">—</option>}
          {shape.options.map((o, j) => (
            <option key={j} value={String(j)} title={o.description}>
              {o.label}
            </option>
          ))}
        </select>
      );
    }
    default:
      return <YamlInput label={p.label} value={p.value} onChange={p.onChange} />;
  }
}

function NumberInput(p: { id?: string; label?: string; value: unknown; integer: boolean; placeholder?: string; onChange: (v: unknown) => void }) {
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
      aria-label={p.label}
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
export function YamlInput(p: { id?: string; label?: string; value: unknown; onChange: (v: unknown) => void; rows?: number }) {
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
        aria-label={p.label}
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

