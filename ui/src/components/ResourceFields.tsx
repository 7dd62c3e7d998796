// The fields of a processor that name the stream's resources: an option marked `x-airtruct-resource` (a `dedupe`'s
// or an `http` processor's `resource`) as a select of the declared resources of its capability, and a `wasm`
// processor's `grants` as a choice among every declared resource. Both say when nothing fitting is declared, with
// a way to the builder's Resources editor.
import { createContext, useContext, useState } from 'react';
import { type Declared, sectionOf } from '../lib/resources';

/** The resources the stream declares, and how to open the Resources editor; absent outside the builder. */
export const ResourcesContext = createContext<{ declared: Declared[]; open: () => void } | undefined>(undefined);

/** The select's value for "a name typed by hand". */
const TYPED = '\u0000typed';

/** The capabilities a processor asks for, as badges: `asks for: cache`. */
export function Capabilities({ list, none }: { list: string[] | undefined; none?: React.ReactNode }) {
  if (!list || list.length === 0) return <>{none ?? null}</>;
  return (
    <span className="asks" title="The host capabilities it calls: a stream that uses it must grant it a resource of each">
      asks for:{' '}
      {list.map((c) => (
        <span className="badge capability" key={c} data-capability={c}>
          {c}
        </span>
      ))}
    </span>
  );
}

function OpenResources({ children }: { children: React.ReactNode }) {
  const cx = useContext(ResourcesContext);
  if (!cx) return <>{children}</>;
  return (
    <button type="button" className="linkish" onClick={() => cx.open()}>
      {children}
    </button>
  );
}

/**
 * A resource of `capability` chosen among the declared ones, or a name typed by hand (**another name…**): one
 * not declared yet is kept as written, with a warning.
 */
export function ResourceSelect(p: { id: string; label: string; capability: string; value: unknown; onChange: (v: string | undefined) => void }) {
  const cx = useContext(ResourcesContext);
  const names = (cx?.declared ?? []).filter((d) => d.capability === p.capability).map((d) => d.name);
  const current = typeof p.value === 'string' ? p.value : '';
  const known = names.includes(current);
  const [typing, setTyping] = useState(current !== '' && !known);
  const typed = typing || (current !== '' && !known);
  const section = sectionOf(p.capability);
  const other = (cx?.declared ?? []).find((d) => d.name === current && d.capability !== p.capability);
  return (
    <>
      <div className="resource-pick">
        <select
          id={p.id}
          value={typed ? TYPED : current}
          onChange={(e) => {
            const v = e.target.value;
            if (v === TYPED) {
              setTyping(true);
              return;
            }
            setTyping(false);
            p.onChange(v === '' ? undefined : v);
          }}
        >
          <option value="">{names.length > 0 ? `— choose ${section.a} —` : `— no ${section.noun} declared —`}</option>
          {names.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
          <option value={TYPED}>another name…</option>
        </select>
        {typed && (
          <input type="text" aria-label={`${p.label} name`} value={current} placeholder={`${section.a} under resources.${section.key}`} autoFocus={typing && current === ''} onChange={(e) => p.onChange(e.target.value === '' ? undefined : e.target.value)} />
        )}
      </div>
      {names.length === 0 ? (
        <p className="help resource-hint">
          The stream declares no {section.noun} yet: <OpenResources>declare one in Resources</OpenResources>.
        </p>
      ) : (
        current !== '' &&
        !known && (
          <p className="help warn resource-hint">
            {other
              ? `"${current}" is ${sectionOf(other.capability).a} (resources.${other.section}), not ${section.a}.`
              : `No ${section.noun} named "${current}" is declared under resources.${section.key}.`}{' '}
            <OpenResources>Open Resources</OpenResources>
          </p>
        )
      )}
    </>
  );
}

/**
 * A `wasm` processor's `grants`: a check box per declared resource, any section, and one per name granted that is
 * not declared (to take it out). With the capabilities the component asks for, says which are not granted yet.
 */
export function GrantsPicker(p: { id: string; value: unknown; onChange: (v: string[] | undefined) => void; asks?: string[] }) {
  const cx = useContext(ResourcesContext);
  const declared = cx?.declared ?? [];
  const list = Array.isArray(p.value) ? p.value.filter((x): x is string => typeof x === 'string') : [];
  const toggle = (name: string, on: boolean) => {
    const next = on ? [...list.filter((x) => x !== name), name] : list.filter((x) => x !== name);
    p.onChange(next.length > 0 ? next : undefined);
  };
  const undeclared = list.filter((n) => !declared.some((d) => d.name === n));
  const granted = new Set(declared.filter((d) => list.includes(d.name)).map((d) => d.capability));
  const missing = (p.asks ?? []).filter((c) => !granted.has(c));
  return (
    <>
      <div className="grants" role="group" aria-label="grants" id={p.id}>
        {declared.map((d) => (
          <label className="check" key={`${d.section}.${d.name}`}>
            <input type="checkbox" checked={list.includes(d.name)} onChange={(e) => toggle(d.name, e.target.checked)} />
            <code>{d.name}</code>
            <span className="muted small">
              {sectionOf(d.capability).noun}
              {d.kind ? ` (${d.kind})` : ''}
            </span>
          </label>
        ))}
        {undeclared.map((n) => (
          <label className="check" key={`?${n}`}>
            <input type="checkbox" checked onChange={() => toggle(n, false)} />
            <code>{n}</code>
            <span className="help warn">not declared under resources</span>
          </label>
        ))}
      </div>
      {declared.length === 0 && (
        <p className="help resource-hint">
          The stream declares no resources yet: <OpenResources>declare them in Resources</OpenResources>.
        </p>
      )}
      {p.asks && p.asks.length > 0 && (
        <p className={`help${missing.length > 0 ? ' warn' : ''}`}>
          It asks for {p.asks.join(', ')}:{' '}
          {missing.length === 0
            ? 'each is granted.'
            : `grant it ${missing.map((c) => `${sectionOf(c).a} (resources.${sectionOf(c).key})`).join(' and ')}, or the stream is refused.`}
        </p>
      )}
    </>
  );
}
