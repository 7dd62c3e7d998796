// Error paths as the API writes them (`config.pipeline.processors[0].mapping.source`), as segment lists, and
// the assignment of validation errors to the fields that show them.
import type { Detail } from '../api/client';

export type Seg = string | number;
export type Path = Seg[];

/** `config.pipeline.processors[0].mapping` → ['config', 'pipeline', 'processors', 0, 'mapping']. */
export function parsePath(p: string): Path {
  const out: Path = [];
  const re = /\[(\d+)\]|\.?([^.[\]]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(p)) !== null) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined && m[2] !== '') out.push(m[2]);
  }
  return out;
}

export function formatPath(p: Path): string {
  let s = '';
  for (const seg of p) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s ? `.${seg}` : seg;
  }
  return s;
}

/** A validation error with its path parsed. */
export interface FieldError {
  path: Path;
  text: string;
  message: string;
}

export function toFieldErrors(details: Detail[], prefix: Path = []): FieldError[] {
  return details.map((d) => {
    const path = [...prefix, ...parsePath(d.path)];
    return { path, text: formatPath(path), message: d.message };
  });
}

export function startsWith(path: Path, prefix: Path): boolean {
  if (prefix.length > path.length) return false;
  return prefix.every((s, i) => s === path[i]);
}

export function equal(a: Path, b: Path): boolean {
  return a.length === b.length && startsWith(a, b);
}

/** Errors at or under `prefix`. */
export function under(errors: FieldError[], prefix: Path): FieldError[] {
  return errors.filter((e) => startsWith(e.path, prefix));
}

/** A DOM id for the field at a path, so an error summary can scroll to it. */
export function fieldId(p: Path): string {
  return 'f-' + formatPath(p).replace(/[^a-zA-Z0-9_-]+/g, '-');
}
