// The builder's Resources editor: the stream's `resources:` (caches, SQL connections, HTTP grants, rate limits)
// listed by section, each resource with its name, its kind (for caches and rate limits) and its options as a form
// of the catalogue's `resources` schema; added, renamed (the processors that name it follow) and removed here.
import { useState } from 'react';
import type { Catalogue } from '../api/types';
import { type Config, type Obj, isObj, kindOf, optionsOf, ordered, processorsOf, withProcessors } from '../lib/config';
import { type FieldError, type Path, equal, fieldId, startsWith, under } from '../lib/paths';
import { NAME_RE, type Section, declaredOf, renameRefs, sectionsOf, usesOf } from '../lib/resources';
import { defaultFor } from '../lib/schema';
import { FieldErrors, SchemaForm } from './SchemaForm';
import { Prose } from './Text';

const ROOT: Path = ['config', 'resources'];

/** Why `name` cannot be given to a resource (`current`: its own name, when renaming), or undefined. */
function nameProblem(name: string, taken: string[], current?: string): string | undefined {
  if (name === '') return undefined;
  if (!NAME_RE.test(name)) return 'A name is letters, digits, _ and - (64 at most).';
  if (name !== current && taken.includes(name)) return `"${name}" is already declared: processors are granted resources by name, so each has its own.`;
  return undefined;
}

export function ResourcesEditor({ cfg, catalogue, onChange, errors }: { cfg: Config; catalogue: Catalogue; onChange: (c: Config, clear?: Path) => void; errors: FieldError[] }) {
  const root = catalogue.resources;
  const sections = sectionsOf(root);
  const resources: Obj = isObj(cfg.resources) ? cfg.resources : {};
  const declared = declaredOf(resources);
  const taken = declared.map((d) => d.name);
  const processors = processorsOf(cfg);
  const uses = usesOf(processors, catalogue);
  const mine = under(errors, ROOT);
  // Problems with the section as a whole, or with a section the editor does not list.
  const known = new Set(sections.map((s) => s.key));
  const own = mine.filter((e) => equal(e.path, ROOT) || !known.has(String(e.path[2])) || e.path.length === 3);

  /** The config with `section` set to `entries` (the section, and `resources:`, left out when empty). */
  const withSection = (c: Config, section: string, entries: Obj): Config => {
    const next: Obj = { ...(isObj(c.resources) ? c.resources : {}) };
    if (Object.keys(entries).length === 0) delete next[section];
    else next[section] = entries;
    return ordered({ ...c, resources: Object.keys(next).length === 0 ? undefined : next });
  };
  const entriesOf = (section: string): Obj => (isObj(resources[section]) ? (resources[section] as Obj) : {});

  if (sections.length === 0) {
    return (
      <div className="component-editor">
        <div className="editor-head">
          <h3>Resources</h3>
        </div>
        <p className="help warn">This server describes no resources: a stream cannot declare any.</p>
        <FieldErrors errors={mine} />
      </div>
    );
  }

  return (
    <div className="component-editor resources-editor">
      <div className="editor-head">
        <h3>Resources</h3>
      </div>
      <p className="help lead">
        Declared once by name, and granted to the processors that call through them: a cache to a <code>cache</code> or <code>dedupe</code>{' '}
        processor, a SQL connection to a <code>sql</code> one, an HTTP grant (the hosts it may call) to an <code>http</code> one, a rate limit to a{' '}
        <code>rate_limit</code> one, and any of them to an uploaded processor's <code>grants</code>.
      </p>
      <FieldErrors errors={own} />
      {sections.map((sec) => {
        const entries = entriesOf(sec.key);
        return (
          <section className="resource-section" key={sec.key} aria-label={sec.label} data-section={sec.key} id={fieldId([...ROOT, sec.key])}>
            <div className="resource-section-head">
              <h4>{sec.label}</h4>
              <code className="muted small">resources.{sec.key}</code>
            </div>
            {sec.description && (
              <p className="help">
                <Prose text={sec.description} />
              </p>
            )}
            {Object.keys(entries).length === 0 && <p className="muted small">None declared.</p>}
            {Object.entries(entries).map(([name, value]) => (
              <ResourceCard
                key={name}
                section={sec}
                root={root}
                name={name}
                value={value}
                taken={taken}
                usedBy={uses.flatMap((u, i) => (u.has(name) ? [i + 1] : []))}
                errors={under(mine, [...ROOT, sec.key, name])}
                onChange={(v) => onChange(withSection(cfg, sec.key, { ...entries, [name]: v }))}
                onRemove={() => {
                  const { [name]: _gone, ...restOf } = entries;
                  void _gone;
                  onChange(withSection(cfg, sec.key, restOf), [...ROOT, sec.key, name]);
                }}
                onRename={(to) => {
                  // The key in its place, and every processor that names it following.
                  const renamed = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k === name ? to : k, v]));
                  const next = withSection(cfg, sec.key, renamed);
                  onChange(processors.length > 0 ? withProcessors(next, renameRefs(processors, catalogue, sec.capability, name, to)) : next, ROOT);
                }}
              />
            ))}
          </section>
        );
      })}
      <AddResource
        sections={sections}
        taken={taken}
        onAdd={(sec, name, kind) => {
          const values = kind ? sec.kinds?.find((k) => k.kind === kind)?.schema : sec.values;
          const options = defaultFor(values, root) ?? {};
          onChange(withSection(cfg, sec.key, { ...entriesOf(sec.key), [name]: kind ? { [kind]: options } : options }));
        }}
      />
    </div>
  );
}

function ResourceCard(p: {
  section: Section;
  root: unknown;
  name: string;
  value: unknown;
  taken: string[];
  usedBy: number[];
  errors: FieldError[];
  onChange: (v: unknown) => void;
  onRemove: () => void;
  onRename: (to: string) => void;
}) {
  const [renaming, setRenaming] = useState<string>();
  const { section: sec, name } = p;
  const path: Path = [...ROOT, sec.key, name];
  const kind = sec.kinds ? kindOf(p.value) : undefined;
  const kindDoc = sec.kinds?.find((k) => k.kind === kind);
  const optionsPath = kindDoc ? [...path, kindDoc.kind] : path;
  const own = p.errors.filter((e) => equal(e.path, path) || (kindDoc !== undefined && !startsWith(e.path, optionsPath)));
  const problem = renaming === undefined ? undefined : nameProblem(renaming, p.taken, name);
  const rename = () => {
    if (renaming === undefined || renaming === '' || problem) return;
    if (renaming !== name) p.onRename(renaming);
    setRenaming(undefined);
  };
  return (
    <div className={`sub-editor resource${own.length ? ' has-error' : ''}`} data-resource={`${sec.key}.${name}`} id={fieldId(path)}>
      <div className="editor-head">
        <h3>
          <code>{name}</code>
        </h3>
        {sec.kinds && (
          <select
            aria-label={`${name} kind`}
            value={kindDoc ? kindDoc.kind : ''}
            onChange={(e) => {
              const k = sec.kinds?.find((x) => x.kind === e.target.value);
              if (k) p.onChange({ [k.kind]: defaultFor(k.schema, p.root) ?? {} });
            }}
          >
            {!kindDoc && <option value="">{kind ?? 'not a known kind'}</option>}
            {sec.kinds.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.kind}
              </option>
            ))}
          </select>
        )}
        <span className="muted small used-by">{p.usedBy.length === 0 ? 'used by no processor' : `used by processor ${p.usedBy.join(', ')}`}</span>
        <div className="spacer" />
        <button type="button" className="btn small ghost" aria-label={`Rename ${name}`} onClick={() => setRenaming(renaming === undefined ? name : undefined)}>
          Rename
        </button>
        <button type="button" className="btn small danger-ghost" aria-label={`Remove ${name}`} onClick={p.onRemove}>
          Remove
        </button>
      </div>
      {renaming !== undefined && (
        <div className="rename">
          <div className="row">
            <input
              type="text"
              aria-label={`New name for ${name}`}
              value={renaming}
              autoFocus
              onChange={(e) => setRenaming(e.target.value.trim())}
              onKeyDown={(e) => {
                if (e.key === 'Enter') rename();
                if (e.key === 'Escape') setRenaming(undefined);
              }}
            />
            <button type="button" className="btn small primary" disabled={renaming === '' || !!problem} onClick={rename}>
              Rename
            </button>
            <button type="button" className="btn small ghost" onClick={() => setRenaming(undefined)}>
              Cancel
            </button>
          </div>
          {problem ? <p className="help warn">{problem}</p> : <p className="help">The processors that name it are changed to the new name.</p>}
        </div>
      )}
      <FieldErrors errors={own} />
      {sec.kinds && !kindDoc ? (
        <p className="help warn">Not one of {sec.kinds.map((k) => k.kind).join(', ')}: edit it in the YAML view.</p>
      ) : (
        <>
          {kindDoc?.description && (
            <p className="help lead">
              <Prose text={kindDoc.description} />
            </p>
          )}
          <SchemaForm
            top
            schema={kindDoc ? kindDoc.schema : sec.values}
            root={p.root}
            value={kindDoc ? optionsOf(p.value) : p.value}
            onChange={(v) => p.onChange(kindDoc ? { [kindDoc.kind]: v === undefined ? {} : v } : v === undefined ? {} : v)}
            path={optionsPath}
            errors={under(p.errors, optionsPath).filter((e) => !equal(e.path, path))}
          />
        </>
      )}
    </div>
  );
}

/** **Add**: a section, a kind for a section that has them, and a name not yet taken. */
function AddResource({ sections, taken, onAdd }: { sections: Section[]; taken: string[]; onAdd: (sec: Section, name: string, kind?: string) => void }) {
  const [key, setKey] = useState(sections[0].key);
  const sec = sections.find((s) => s.key === key) ?? sections[0];
  const [kind, setKind] = useState<string>();
  const [name, setName] = useState('');
  const chosenKind = sec.kinds ? (sec.kinds.find((k) => k.kind === kind)?.kind ?? sec.kinds[0].kind) : undefined;
  const problem = nameProblem(name, taken);
  const add = () => {
    if (name === '' || problem) return;
    onAdd(sec, name, chosenKind);
    setName('');
  };
  return (
    <fieldset className="form-object nested add-resource" aria-label="Add a resource">
      <legend>Add a resource</legend>
      <div className="row">
        <label className="inline-label">
          <span className="field-label">Section</span>
          <select aria-label="Section" value={sec.key} onChange={(e) => setKey(e.target.value)}>
            {sections.map((s) => (
              <option key={s.key} value={s.key}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        {sec.kinds && (
          <label className="inline-label">
            <span className="field-label">Kind</span>
            <select aria-label="Kind" value={chosenKind} onChange={(e) => setKind(e.target.value)}>
              {sec.kinds.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            </select>
          </label>
        )}
        <label className="inline-label grow">
          <span className="field-label">Name</span>
          <input
            type="text"
            aria-label="Name"
            value={name}
            placeholder={sec.capability === 'cache' ? 'seen' : sec.capability === 'http' ? 'api' : sec.capability === 'sql' ? 'users_db' : 'calls'}
            onChange={(e) => setName(e.target.value.trim())}
            onKeyDown={(e) => e.key === 'Enter' && add()}
          />
        </label>
        <button type="button" className="btn primary" disabled={name === '' || !!problem} onClick={add}>
          Add
        </button>
      </div>
      {problem ? (
        <p className="help warn">{problem}</p>
      ) : (
        sec.kinds && (
          <p className="help">
            <Prose text={sec.kinds.find((k) => k.kind === chosenKind)?.description ?? ''} />
          </p>
        )
      )}
    </fieldset>
  );
}
