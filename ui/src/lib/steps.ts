// The steps of a pipeline as the server names them (the test endpoint's labels, the stream's counters): by their
// place in the config, `pipeline.processors[0]` for a top-level processor and, inside control flow,
// `pipeline.processors[0].switch.cases[1].processors[0]` or `pipeline.processors[2].catch[0]`. A step is nested
// under the control step whose path begins its own.
import { type Path, parsePath, startsWith } from './paths';

export interface Step {
  /** `pipeline.processors[0].switch.cases[1].processors[0]` */
  path: string;
  segs: Path;
  /** The kind the label gives (`mapping`), empty when it gives none. */
  kind: string;
  /** 0 for a top-level processor, 1 for one inside it, and so on. */
  depth: number;
  /** The index, in the list given, of the control step this one is inside. */
  parent?: number;
  /** The top-level processor's position (0-based) it is or is inside, if the path says. */
  top?: number;
  /** Where it is inside its control step: `case 2 › processor 1`; empty for a top-level step. */
  where: string;
}

/** `pipeline.processors[0].switch.cases[0].processors[0] (mapping)` → its path and kind. */
export function splitLabel(label: string): { path: string; kind: string } {
  const m = /^(.*?)\s*\(([^)]*)\)\s*$/.exec(label);
  return m ? { path: m[1], kind: m[2] } : { path: label.trim(), kind: '' };
}

/**
 * The steps named by `labels` (in any order), each with its depth and parent: a step's parent is the step of the
 * longest path that begins its own, its depth the number of (distinct) paths of steps that begin its own.
 */
export function stepsOf(labels: { path: string; kind: string }[]): Step[] {
  const segs = labels.map((l) => parsePath(l.path));
  return labels.map((l, i) => {
    const s = segs[i];
    let parent: number | undefined;
    const above = new Set<string>();
    segs.forEach((o, j) => {
      if (o.length >= s.length || !startsWith(s, o)) return;
      above.add(labels[j].path);
      if (parent === undefined || o.length > segs[parent].length) parent = j;
    });
    const depth = above.size;
    const top = s[0] === 'pipeline' && s[1] === 'processors' && typeof s[2] === 'number' ? s[2] : undefined;
    return { path: l.path, segs: s, kind: l.kind, depth, parent, top, where: parent === undefined ? '' : where(s.slice(segs[parent].length)) };
  });
}

/** `switch.cases[1].processors[0]` (the part of the path inside the control step) → `case 2 › processor 1`. */
function where(rel: Path): string {
  // The first segment is the control step's kind (`switch`, `catch`): its own list is of processors.
  const parts: string[] = [];
  rel.forEach((seg, i) => {
    if (typeof seg !== 'number') return;
    const key = i >= 2 && typeof rel[i - 1] === 'string' ? String(rel[i - 1]) : 'processors';
    parts.push(`${key.replace(/s$/, '')} ${seg + 1}`);
  });
  return parts.join(' › ');
}

/** The component at a path of the config (`['pipeline', 'processors', 0, 'catch', 0]`), if there is one. */
export function componentAt(config: unknown, segs: Path): unknown {
  let cur: unknown = config;
  for (const seg of segs) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}
