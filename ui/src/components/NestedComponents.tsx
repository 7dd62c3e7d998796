// Options that hold components of their own (a switch case's `output`, a broker's `inputs` or `outputs`, a window
// buffer's `late_output`, a `switch` processor case's `processors`, the processors of a `try` or `catch`), as the
// catalogue's schema marks them (`x-airtruct-component`): each edited as a component, its kind picked from the
// catalogue's kinds of that role (and, for processors, the uploaded ones) and then its generated form, as deep as
// the config nests them.
import { createContext, useState } from 'react';
import type { Catalogue, KindDoc, UploadedKind } from '../api/types';
import { type FieldError, type Path, equal, under } from '../lib/paths';
import type { ComponentRole } from '../lib/schema';
import { ComponentEditor, KindPicker, newComponent } from './ComponentEditor';
import { FieldErrors, Group } from './SchemaForm';
import { Prose } from './Text';

/** The catalogue, for the kinds a nested component may be; without it such options are edited as YAML. */
export const CatalogueContext = createContext<Catalogue | undefined>(undefined);

/** The kinds a component of `role` may be; for processors, the uploaded ones too, as the pipeline offers them. */
export function kindsOf(catalogue: Catalogue, role: ComponentRole): { kinds: KindDoc[]; uploaded?: UploadedKind[] } {
  if (role === 'processor') return { kinds: catalogue.processors, uploaded: catalogue.uploaded };
  return { kinds: role === 'input' ? catalogue.inputs : catalogue.outputs };
}

interface Props {
  role: ComponentRole;
  kinds: KindDoc[];
  /** Uploaded processors, offered with the built-in ones (processors only). */
  uploaded?: UploadedKind[];
  /** The option's name or title (`output`, `late_output`, `outputs`). */
  label: string;
  description?: string;
  optional: boolean;
  value: unknown;
  onChange: (v: unknown) => void;
  path: Path;
  errors: FieldError[];
}

const noun = (role: ComponentRole) => ({ input: 'Input', processor: 'Processor', output: 'Output' })[role];

/**
 * One component (`{kind: options}`). An optional one not set stays closed, with its description and **Add**, which
 * opens the kind picker: the config has it once a kind is picked.
 */
export function ComponentField(p: Props) {
  const [adding, setAdding] = useState(false);
  const absent = p.value === undefined || p.value === null;
  if (p.optional && absent && !adding) {
    return (
      <Group path={p.path} label={p.label} closed>
        {p.description && (
          <p className="help">
            <Prose text={p.description} />
          </p>
        )}
        <button type="button" className="btn small" onClick={() => setAdding(true)}>
          Add {p.label}
        </button>
        <FieldErrors errors={p.errors} />
      </Group>
    );
  }
  return (
    <div className="sub-editor nested-component" data-field={p.path.join('.')}>
      <ComponentEditor
        title={p.label}
        description={p.description}
        kinds={p.kinds}
        uploaded={p.uploaded}
        value={p.value}
        onChange={p.onChange}
        path={p.path}
        errors={p.errors}
        actions={
          p.optional && (
            <button
              type="button"
              className="btn small ghost"
              aria-label={`Remove ${p.label}`}
              onClick={() => {
                setAdding(false);
                p.onChange(undefined);
              }}
            >
              Remove
            </button>
          )
        }
      />
    </div>
  );
}

/**
 * A list of components, each with its own editor, moved with its arrows and taken out with **Remove**; **Add
 * output** (or input, or processor) opens the kind picker, and the component joins the list once its kind is
 * picked.
 */
export function ComponentList(p: Props) {
  const [adding, setAdding] = useState(false);
  const list = Array.isArray(p.value) ? p.value : [];
  const name = noun(p.role);
  const lower = name.toLowerCase();
  // Errors about the list itself, or about an element it no longer has.
  const mine = p.errors.filter((e) => equal(e.path, p.path) || (e.path.length > p.path.length && !(typeof e.path[p.path.length] === 'number' && (e.path[p.path.length] as number) < list.length)));
  const move = (from: number, to: number) => {
    const next = [...list];
    const [c] = next.splice(from, 1);
    next.splice(to, 0, c);
    p.onChange(next);
  };
  return (
    <Group path={p.path} label={p.label} required={!p.optional}>
      {p.description && (
        <p className="help">
          <Prose text={p.description} />
        </p>
      )}
      {list.map((item, i) => (
        <div className="sub-editor nested-component" key={i} data-field={[...p.path, i].join('.')}>
          <ComponentEditor
            title={`${name} ${i + 1}`}
            kinds={p.kinds}
            uploaded={p.uploaded}
            value={item}
            onChange={(v) => p.onChange(list.map((x, j) => (j === i ? v : x)))}
            path={[...p.path, i]}
            errors={under(p.errors, [...p.path, i])}
            actions={
              <>
                {i > 0 && (
                  <button type="button" className="icon" aria-label={`Move ${lower} ${i + 1} up`} title="Move up" onClick={() => move(i, i - 1)}>
                    ▲
                  </button>
                )}
                {i < list.length - 1 && (
                  <button type="button" className="icon" aria-label={`Move ${lower} ${i + 1} down`} title="Move down" onClick={() => move(i, i + 1)}>
                    ▼
                  </button>
                )}
                <button type="button" className="btn small ghost" aria-label={`Remove ${lower} ${i + 1}`} onClick={() => p.onChange(list.filter((_, j) => j !== i))}>
                  Remove
                </button>
              </>
            }
          />
        </div>
      ))}
      {adding ? (
        <div className="sub-editor nested-component">
          <div className="component-editor">
            <div className="editor-head">
              <h3>
                {name} {list.length + 1}
              </h3>
              <div className="spacer" />
              <button type="button" className="btn small ghost" onClick={() => setAdding(false)}>
                Cancel
              </button>
            </div>
            <KindPicker
              kinds={p.kinds}
              uploaded={p.uploaded}
              label={`Choose ${lower} ${list.length + 1}`}
              onPick={(k) => {
                setAdding(false);
                p.onChange([...list, newComponent(k, p.kinds, p.uploaded)]);
              }}
            />
          </div>
        </div>
      ) : (
        <button type="button" className="btn small" onClick={() => setAdding(true)}>
          Add {lower}
        </button>
      )}
      <FieldErrors errors={mine} />
    </Group>
  );
}
