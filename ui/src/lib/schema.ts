// Reading JSON Schema (as the components catalogue gives it, from schemars or from a component's own
// description) for form generation: references, nullable wrappers, enums, variants and maps.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Schema = { [k: string]: any };

export type Shape =
  | { kind: 'enum'; options: { value: unknown; label: string; description?: string }[] }
  | { kind: 'variants'; variants: Schema[] }
  | { kind: 'object'; properties: [string, Schema][]; required: Set<string> }
  /** An object of any keys whose values all follow one schema (`additionalProperties`), a `HashMap` in Rust. */
  | { kind: 'map'; values: Schema }
  | { kind: 'array'; items: Schema }
  | { kind: 'string'; numeric?: boolean }
  | { kind: 'number'; integer: boolean }
  | { kind: 'boolean' }
  | { kind: 'none' }
  | { kind: 'any' };

function asSchema(s: unknown): Schema {
  if (s && typeof s === 'object') return s as Schema;
  return {};
}

/** Follows `$ref` (and a lone `allOf`), keeping the referring schema's own title, description and default. */
export function resolve(schema: unknown, root: unknown, depth = 0): Schema {
  let s = asSchema(schema);
  if (depth > 20) return s;
  if (typeof s.$ref === 'string') {
    const target = lookup(s.$ref, asSchema(root));
    const { $ref: _ref, ...rest } = s;
    void _ref;
    s = { ...resolve(target, root, depth + 1), ...rest };
  }
  if (Array.isArray(s.allOf) && s.allOf.length === 1) {
    const { allOf, ...rest } = s;
    s = { ...resolve(allOf[0], root, depth + 1), ...rest };
  }
  return s;
}

function lookup(ref: string, root: Schema): Schema {
  if (!ref.startsWith('#/')) return {};
  let cur: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    cur = (cur as Schema | undefined)?.[key];
  }
  return asSchema(cur);
}

const isNull = (s: Schema) => s.type === 'null' || (Array.isArray(s.type) && s.type.length === 1 && s.type[0] === 'null');

/** Unwraps `Option<T>`-style schemas: `anyOf: [T, null]` or `type: [t, "null"]`. Answers the inner schema and whether null was allowed. */
export function unwrapNullable(schema: Schema, root: unknown): { schema: Schema; nullable: boolean } {
  const s = resolve(schema, root);
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key])) {
      const variants = (s[key] as unknown[]).map((v) => resolve(v, root));
      const nonNull = variants.filter((v) => !isNull(v));
      if (nonNull.length === 1 && nonNull.length < variants.length) {
        const { [key]: _drop, ...rest } = s;
        void _drop;
        return { schema: { ...nonNull[0], ...rest, title: rest.title ?? nonNull[0].title, description: rest.description ?? nonNull[0].description }, nullable: true };
      }
    }
  }
  if (Array.isArray(s.type) && s.type.includes('null')) {
    const types = s.type.filter((t: string) => t !== 'null');
    return { schema: { ...s, type: types.length === 1 ? types[0] : types }, nullable: true };
  }
  return { schema: s, nullable: false };
}

export function shapeOf(schema: Schema, root: unknown): Shape {
  const s = schema;
  if (Array.isArray(s.enum)) {
    return { kind: 'enum', options: s.enum.map((v: unknown) => ({ value: v, label: String(v) })) };
  }
  if ('const' in s) return { kind: 'enum', options: [{ value: s.const, label: String(s.const), description: s.description }] };
  for (const key of ['oneOf', 'anyOf'] as const) {
    if (Array.isArray(s[key]) && s[key].length > 0) {
      const variants = (s[key] as unknown[]).map((v) => resolve(v, root));
      if (variants.every((v) => 'const' in v || (Array.isArray(v.enum) && v.enum.length >= 1))) {
        const options = variants.flatMap((v) =>
          'const' in v
            ? [{ value: v.const, label: String(v.const), description: v.description as string | undefined }]
            : (v.enum as unknown[]).map((e) => ({ value: e, label: String(e), description: v.description as string | undefined })),
        );
        return { kind: 'enum', options };
      }
      return { kind: 'variants', variants };
    }
  }
  const type = Array.isArray(s.type) ? (s.type.length === 1 ? s.type[0] : undefined) : s.type;
  if (Array.isArray(s.type) && s.type.length > 1) {
    // A size or a count written either way (`"64MiB"` or `1024`): a text field that keeps numbers numbers.
    const t = s.type as string[];
    if (t.includes('string') && t.every((x) => ['string', 'integer', 'number'].includes(x))) return { kind: 'string', numeric: true };
    return { kind: 'any' };
  }
  if (type === 'object' || (type === undefined && s.properties)) {
    const props = Object.entries(asSchema(s.properties)) as [string, Schema][];
    if (props.length === 0) {
      if (s.additionalProperties === false) return { kind: 'none' };
      const values = s.additionalProperties;
      return values && typeof values === 'object' && !Array.isArray(values) ? { kind: 'map', values: values as Schema } : { kind: 'any' };
    }
    return { kind: 'object', properties: props, required: new Set(Array.isArray(s.required) ? s.required : []) };
  }
  if (type === 'array') return { kind: 'array', items: asSchema(s.items) };
  if (type === 'string') return { kind: 'string' };
  if (type === 'integer') return { kind: 'number', integer: true };
  if (type === 'number') return { kind: 'number', integer: false };
  if (type === 'boolean') return { kind: 'boolean' };
  return { kind: 'any' };
}

/** Which variant a value is written in: the first whose type matches it. */
export function variantIndex(variants: Schema[], value: unknown, root: unknown): number {
  const t = jsonType(value);
  if (value === undefined) return 0;
  const i = variants.findIndex((v) => {
    const sh = shapeOf(unwrapNullable(v, root).schema, root);
    switch (sh.kind) {
      case 'string':
        return t === 'string';
      case 'number':
        return t === 'number';
      case 'boolean':
        return t === 'boolean';
      case 'array':
        return t === 'array';
      case 'object':
      case 'map':
        return t === 'object';
      case 'enum':
        return sh.options.some((o) => o.value === value);
      default:
        return false;
    }
  });
  return i < 0 ? variants.findIndex((v) => shapeOf(v, root).kind === 'any') : i;
}

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A starting value for a schema: its default, or what its required fields need. */
export function defaultFor(schema: unknown, root: unknown, depth = 0): unknown {
  const { schema: s, nullable } = unwrapNullable(asSchema(schema), root);
  if (s.default !== undefined && s.default !== null) return s.default;
  if (nullable || depth > 8) return undefined;
  const sh = shapeOf(s, root);
  switch (sh.kind) {
    case 'enum':
      return sh.options[0]?.value;
    case 'variants':
      return defaultFor(sh.variants[0], root, depth + 1);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, p] of sh.properties) {
        if (!sh.required.has(k)) continue;
        const v = defaultFor(p, root, depth + 1);
        if (v !== undefined) out[k] = firstItem(p, root, depth) ?? v;
      }
      return out;
    }
    case 'map':
      return {};
    case 'array':
      return [];
    case 'string':
      return '';
    case 'number':
      return 0;
    case 'boolean':
      return false;
    default:
      return s.type === 'object' ? {} : undefined;
  }
}

/**
 * A required list whose items need nothing of their own (a `switch` processor's `cases`: a case with no check
 * matches every message) starts with one item, ready to fill in, rather than empty (a `switch` of no case is
 * refused). Undefined for any other list: one of components (`x-airtruct-component`), of values, or of items with
 * required fields, as a `switch` output's cases (each needs its `output`).
 */
function firstItem(schema: Schema, root: unknown, depth: number): unknown[] | undefined {
  const { schema: s } = unwrapNullable(resolve(schema, root), root);
  const sh = shapeOf(s, root);
  if (sh.kind !== 'array' || hasDefault(s) || componentRole(s)) return undefined;
  const items = unwrapNullable(resolve(sh.items, root), root).schema;
  const itemShape = shapeOf(items, root);
  if (itemShape.kind !== 'object' || itemShape.required.size > 0) return undefined;
  return [defaultFor(items, root, depth + 2)];
}

/** A short name for a variant, for the switch between them. */
export function variantLabel(v: Schema, root: unknown): string {
  if (typeof v.title === 'string') return v.title;
  const sh = shapeOf(unwrapNullable(v, root).schema, root);
  switch (sh.kind) {
    case 'object':
      return 'options';
    case 'map':
      return 'entries';
    case 'string':
      return 'text';
    case 'array':
      return 'list';
    default:
      return sh.kind;
  }
}

/** Whether a schema sets a default other than null: a property left out then still has a value. */
export function hasDefault(s: Schema): boolean {
  return s.default !== undefined && s.default !== null;
}

/** The bounds every value of a format has (schemars writes them for sized integers): not worth saying. */
const NATURAL: Record<string, [number, number | undefined]> = {
  uint: [0, undefined],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: [0, undefined],
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
};

/** A number schema's own bounds (`minimum`, `maximum`), leaving out those its format implies. */
export function boundsOf(s: Schema): { min?: number; max?: number } {
  const natural = typeof s.format === 'string' ? NATURAL[s.format] : undefined;
  const min = typeof s.minimum === 'number' && !(s.minimum === 0 && s.maximum === undefined) && s.minimum !== natural?.[0] ? s.minimum : undefined;
  const max = typeof s.maximum === 'number' && s.maximum !== natural?.[1] ? s.maximum : undefined;
  return { min, max };
}

/** `from 1 to 64`, `at least 1`, `at most 64`; undefined when the schema sets no bounds of its own. */
export function boundsText({ min, max }: { min?: number; max?: number }): string | undefined {
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  if (min !== undefined) return `at least ${min}`;
  if (max !== undefined) return `at most ${max}`;
  return undefined;
}

/** The schema of property `key` of an object schema, references and nullable wrappers undone. */
export function propertyOf(schema: unknown, key: string, root: unknown): Schema | undefined {
  const s = unwrapNullable(resolve(schema, root), root).schema;
  const p = asSchema(s.properties)[key];
  return p === undefined ? undefined : resolve(p, root);
}

/** The roles whose components an option may hold. */
export type ComponentRole = 'input' | 'processor' | 'output';

/**
 * The role of the components an option holds, as the catalogue marks it (`"x-airtruct-component": "output"`): one
 * component (`{kind: options}`) on an object-typed option, as a switch case's `output`, or a list of them on an
 * array-typed one, as a broker's `outputs`, a `switch` processor case's `processors`, or the whole options of a
 * `try` or `catch`; undefined for any other option.
 */
export function componentRole(s: Schema): ComponentRole | undefined {
  const r = s['x-airtruct-component'];
  return r === 'input' || r === 'processor' || r === 'output' ? r : undefined;
}
