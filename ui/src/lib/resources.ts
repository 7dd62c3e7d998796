// A stream's `resources:` as the builder edits them: caches, SQL connections, HTTP grants and rate limits, each
// declared once by name in its section and granted to the processors that call through it. Built-in processors
// name one in an option their schema marks `x-airtruct-resource: <capability>` (a `dedupe`'s `resource`); a `wasm`
// processor lists any in `grants`. The sections and their kinds are read from the catalogue's `resources` schema.
import type { Catalogue } from '../api/types';
import { type Obj, isObj, kindOf } from './config';
import { type Schema, propertyOf, resolve, shapeOf, unwrapNullable } from './schema';

/** What the builder calls each section, and the capability its resources give (the server's `section()`). */
const KNOWN: Record<string, { capability: string; label: string; noun: string; a: string }> = {
  caches: { capability: 'cache', label: 'Caches', noun: 'cache', a: 'a cache' },
  sql: { capability: 'sql', label: 'SQL connections', noun: 'SQL connection', a: 'a SQL connection' },
  http: { capability: 'http', label: 'HTTP grants', noun: 'HTTP grant', a: 'an HTTP grant' },
  rate_limits: { capability: 'rate_limit', label: 'Rate limits', noun: 'rate limit', a: 'a rate limit' },
};

/** One way of writing a resource of a section with kinds (`memory` or `redis` for a cache). */
export interface ResourceKind {
  kind: string;
  /** The schema of its options (`{capacity, ttl}` for `memory`). */
  schema: Schema;
  description?: string;
}

/** A section of `resources:` as the catalogue's schema describes it. */
export interface Section {
  /** `caches` */
  key: string;
  /** `cache`: what a processor's `x-airtruct-resource` names. */
  capability: string;
  /** `Caches` */
  label: string;
  /** `cache`: one of them, in a sentence. */
  noun: string;
  description?: string;
  /** The schema of one resource (the map's values). */
  values: Schema;
  /** Its kinds, for a section whose resources are written `{kind: options}`; undefined otherwise. */
  kinds?: ResourceKind[];
}

/** A resource declared in the config. */
export interface Declared {
  section: string;
  capability: string;
  name: string;
  /** `memory`, `redis`, `local`: for a section with kinds. */
  kind?: string;
}

/** Letters, digits, `_` and `-`, 64 at most: the names the server takes. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The sections of the catalogue's `resources` schema, in the order it lists them. */
export function sectionsOf(root: unknown): Section[] {
  if (!isObj(root)) return [];
  const s = unwrapNullable(resolve(root, root), root).schema;
  const props = isObj(s.properties) ? Object.keys(s.properties) : [];
  return props.flatMap((key) => {
    const p = propertyOf(root, key, root);
    if (!p) return [];
    const shape = shapeOf(unwrapNullable(p, root).schema, root);
    if (shape.kind !== 'map') return [];
    const values = unwrapNullable(resolve(shape.values, root), root).schema;
    const known = KNOWN[key];
    return [
      {
        key,
        capability: known?.capability ?? key,
        label: known?.label ?? key,
        noun: known?.noun ?? key,
        description: typeof p.description === 'string' ? p.description : undefined,
        values,
        kinds: kindsOf(values, root),
      },
    ];
  });
}

/** The kinds of a `oneOf` of single-key objects (`{memory: ...} | {redis: ...}`), or undefined. */
function kindsOf(values: Schema, root: unknown): ResourceKind[] | undefined {
  const shape = shapeOf(values, root);
  if (shape.kind !== 'variants') return undefined;
  const kinds: ResourceKind[] = [];
  for (const v of shape.variants) {
    const keys = isObj(v.properties) ? Object.keys(v.properties) : [];
    if (keys.length !== 1) return undefined;
    const inner = resolve(v.properties[keys[0]], root);
    kinds.push({ kind: keys[0], schema: inner, description: (v.description ?? inner.description) as string | undefined });
  }
  return kinds.length > 0 ? kinds : undefined;
}

/** The section of a capability (`cache` → `caches`, as the server names it), and what to call one of it. */
export function sectionOf(capability: string): { key: string; noun: string; a: string; label: string } {
  const hit = Object.entries(KNOWN).find(([, v]) => v.capability === capability);
  return hit ? { key: hit[0], noun: hit[1].noun, a: hit[1].a, label: hit[1].label } : { key: capability, noun: capability, a: `a ${capability}`, label: capability };
}

/** Every resource the `resources:` value declares, section by section. */
export function declaredOf(resources: unknown): Declared[] {
  if (!isObj(resources)) return [];
  return Object.entries(resources).flatMap(([section, entries]) =>
    isObj(entries)
      ? Object.entries(entries).map(([name, value]) => ({
          section,
          capability: KNOWN[section]?.capability ?? section,
          name,
          kind: kindOf(value),
        }))
      : [],
  );
}

/** The options of built-in processor kinds that name a resource: kind → [option, capability]. */
function resourceOptions(catalogue: Catalogue): Map<string, [string, string][]> {
  const out = new Map<string, [string, string][]>();
  for (const k of catalogue.processors) {
    const props = isObj(k.config_schema) && isObj(k.config_schema.properties) ? k.config_schema.properties : {};
    const marked = Object.entries(props).flatMap(([option, p]) => (isObj(p) && typeof p['x-airtruct-resource'] === 'string' ? [[option, p['x-airtruct-resource']] as [string, string]] : []));
    if (marked.length > 0) out.set(k.kind, marked);
  }
  return out;
}

/** A reference to a resource: by a built-in processor's option (its capability known) or a `wasm` grant. */
interface Ref {
  name: string;
  capability?: string;
}

/**
 * Walks the processors (and those nested in control flow, as deep as they go), handing each reference to a
 * resource to `f` and putting what it answers in its place.
 */
function mapRefs(value: unknown, options: Map<string, [string, string][]>, f: (r: Ref) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => mapRefs(v, options, f));
  if (!isObj(value)) return value;
  const kind = kindOf(value);
  const marked = kind ? options.get(kind) : undefined;
  if (kind && (marked || kind === 'wasm') && isObj(value[kind])) {
    const o: Obj = { ...value[kind] };
    for (const [option, capability] of marked ?? []) {
      if (typeof o[option] === 'string') o[option] = f({ name: o[option] as string, capability });
    }
    if (kind === 'wasm' && Array.isArray(o.grants)) o.grants = o.grants.map((g) => (typeof g === 'string' ? f({ name: g }) : g));
    return { [kind]: o };
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapRefs(v, options, f)]));
}

/** For each top-level processor (by index), the names of the resources it and the processors inside it use. */
export function usesOf(processors: unknown[], catalogue: Catalogue): Set<string>[] {
  const options = resourceOptions(catalogue);
  return processors.map((p) => {
    const names = new Set<string>();
    mapRefs(p, options, (r) => {
      names.add(r.name);
      return r.name;
    });
    return names;
  });
}

/** The processors with every reference to the resource `from` (of `capability`) renamed `to`. */
export function renameRefs(processors: unknown[], catalogue: Catalogue, capability: string, from: string, to: string): unknown[] {
  const options = resourceOptions(catalogue);
  return processors.map((p) => mapRefs(p, options, (r) => (r.name === from && (r.capability === undefined || r.capability === capability) ? to : r.name)));
}
