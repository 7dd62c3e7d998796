// The stream config as the builder edits it: a plain object in the shape `airtruct run` reads.
import YAML from 'yaml';

export type Obj = Record<string, unknown>;
export type Config = Obj;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The kind of a `{kind: options}` component, or undefined. */
export function kindOf(c: unknown): string | undefined {
  if (!isObj(c)) return undefined;
  const keys = Object.keys(c);
  return keys.length === 1 ? keys[0] : undefined;
}

export function optionsOf(c: unknown): unknown {
  const k = kindOf(c);
  return k && isObj(c) ? c[k] : undefined;
}

export function processorsOf(cfg: Config): unknown[] {
  const p = isObj(cfg.pipeline) ? cfg.pipeline.processors : undefined;
  return Array.isArray(p) ? p : [];
}

export function withProcessors(cfg: Config, list: unknown[]): Config {
  const pipeline = isObj(cfg.pipeline) ? { ...cfg.pipeline } : {};
  pipeline.processors = list;
  return ordered({ ...cfg, pipeline });
}

const ORDER = ['input', 'buffer', 'pipeline', 'output', 'on_error', 'replicas', 'resources', 'tests'];

/** The config with its keys in the documented order (input, buffer, pipeline, output, on_error, replicas,
 * resources). */
export function ordered(cfg: Config): Config {
  const out: Config = {};
  for (const k of ORDER) if (cfg[k] !== undefined) out[k] = cfg[k];
  for (const k of Object.keys(cfg)) if (!ORDER.includes(k) && cfg[k] !== undefined) out[k] = cfg[k];
  if (isObj(out.pipeline)) {
    const p: Obj = {};
    for (const k of ['batch', 'threads', 'processors']) if (out.pipeline[k] !== undefined) p[k] = out.pipeline[k];
    for (const k of Object.keys(out.pipeline)) if (!(k in p) && out.pipeline[k] !== undefined) p[k] = out.pipeline[k];
    out.pipeline = p;
  }
  return out;
}

export function toYaml(cfg: unknown): string {
  if (cfg === undefined || (isObj(cfg) && Object.keys(cfg).length === 0)) return '';
  return YAML.stringify(isObj(cfg) ? ordered(cfg) : cfg, { lineWidth: 0 });
}

/** A one-line summary of a component's options, for the pipeline drawing. */
export function summary(c: unknown): string {
  const k = kindOf(c);
  if (!k) return '';
  const o = optionsOf(c);
  if (typeof o === 'string') return o.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
  if (isObj(o)) {
    if (k === 'wasm') return typeof o.name === 'string' ? `${o.name}${o.version ? ` v${o.version}` : ''}` : String(o.path ?? '');
    if (typeof o.source === 'string') return o.source.split('\n')[0];
    if (typeof o.path === 'string') return o.path;
    const parts = Object.entries(o)
      .filter(([, v]) => typeof v !== 'object')
      .map(([key, v]) => `${key}: ${String(v)}`);
    return parts.join(', ');
  }
  return '';
}
