// The stream drawn read-only, as the builder draws it, with each component's counters on its node (the stream's
// `components`, summed over its replicas), so that a user sees where messages are filtered out, fail or wait. The
// steps inside a `switch`, `try` or `catch` are listed under the drawing, indented by how deep they are.
import { Fragment } from 'react';
import type { ComponentCounters } from '../api/types';
import { type Config, isObj, kindOf, optionsOf, processorsOf } from '../lib/config';
import { fmtBytes, fmtCount, fmtMicros } from '../lib/format';
import { type Path, parsePath } from '../lib/paths';
import { componentAt, stepsOf } from '../lib/steps';
import { Arrow } from './Pipeline';

type Role = 'input' | 'buffer' | 'processor' | 'output';

interface FlowNode {
  /** `input`, `buffer`, `p0`, `p1`, ..., `output`, `dead_letter`: for tests and styles. */
  id: string;
  /** The component's path in the config, as `components[].component` names it. */
  component: string;
  role: Role;
  title: string;
  /** What the node shows: the kind, or an uploaded processor's name and version. */
  kind: string;
  /** The kind as the config writes it (`wasm` for an uploaded processor), as the counters name it. */
  configKind: string;
}

function processorLabel(p: unknown): string {
  const k = kindOf(p);
  const o = optionsOf(p);
  return k === 'wasm' && isObj(o) && typeof o.name === 'string' ? `${o.name}${o.version ? ` v${o.version}` : ''}` : (k ?? '?');
}

/** The nodes of a config, in pipeline order; the dead letter output last when there is one. */
export function flowNodes(cfg: Config): FlowNode[] {
  const node = (id: string, component: string, role: Role, title: string, c: unknown, kind = kindOf(c) ?? '?'): FlowNode => ({
    id,
    component,
    role,
    title,
    kind,
    configKind: kindOf(c) ?? '',
  });
  const nodes = [node('input', 'input', 'input', 'Input', cfg.input)];
  if (isObj(cfg.buffer)) nodes.push(node('buffer', 'buffer', 'buffer', 'Buffer', cfg.buffer));
  processorsOf(cfg).forEach((p, i) => nodes.push(node(`p${i}`, `pipeline.processors[${i}]`, 'processor', `Processor ${i + 1}`, p, processorLabel(p))));
  nodes.push(node('output', 'output', 'output', 'Output', cfg.output));
  if (isObj(cfg.on_error) && cfg.on_error.dead_letter !== undefined) {
    nodes.push(node('dead_letter', 'on_error.dead_letter', 'output', 'Dead letter', cfg.on_error.dead_letter));
  }
  return nodes;
}

/** What `received` and `sent` mean for each role. */
const MEANING: Record<Role, { received: string; sent: string; failed: string; time: string }> = {
  input: { received: 'messages read', sent: 'messages handed on', failed: 'messages that failed', time: 'time spent reading' },
  buffer: { received: 'messages written to the buffer', sent: 'messages read from it', failed: 'messages that failed', time: 'time spent in the buffer' },
  processor: { received: 'messages in', sent: 'messages out', failed: 'messages it failed', time: 'time spent in its calls' },
  output: { received: 'messages given to it', sent: 'messages it confirmed', failed: 'messages it refused', time: 'time spent writing' },
};

/** Time per message, where the component does work per message: processors and outputs. */
function perMessage(role: Role, c: ComponentCounters): number | undefined {
  if ((role !== 'processor' && role !== 'output') || c.received === 0 || c.processing_us === 0) return undefined;
  return c.processing_us / c.received;
}

function Counters({ role, c }: { role: Role; c: ComponentCounters | undefined }) {
  if (!c) return <div className="node-counters muted">no counters yet</div>;
  const m = MEANING[role];
  const per = perMessage(role, c);
  const tip = [
    `${fmtCount(c.received)} ${m.received}`,
    `${fmtCount(c.sent)} ${m.sent}`,
    `${fmtCount(c.filtered)} filtered out`,
    `${fmtCount(c.failed)} ${m.failed}`,
    `${fmtBytes(c.bytes_in)} in, ${fmtBytes(c.bytes_out)} out`,
    c.processing_us > 0 ? `${fmtMicros(c.processing_us)} ${m.time} in all` : undefined,
  ]
    .filter((l) => l !== undefined)
    .join('\n');
  const n = (key: 'received' | 'sent' | 'filtered' | 'failed', label: string, cls = '') => (
    <span className={cls || undefined} data-counter={key} data-value={c[key]}>
      {label} <b>{fmtCount(c[key])}</b>
    </span>
  );
  return (
    <div className="node-counters" title={tip}>
      <div>
        {n('received', 'in')} · {n('sent', 'out')}
      </div>
      {(c.filtered > 0 || c.failed > 0) && (
        <div>
          {c.filtered > 0 && n('filtered', 'filtered')}
          {c.filtered > 0 && c.failed > 0 && ' · '}
          {c.failed > 0 && n('failed', 'failed', 'bad')}
        </div>
      )}
      {per !== undefined && (
        <div className="muted" data-counter="processing" data-value={c.processing_us}>
          {fmtMicros(per)}/msg
        </div>
      )}
    </div>
  );
}

function Node({ node, c }: { node: FlowNode; c: ComponentCounters | undefined }) {
  return (
    <div className={`node static${c && c.failed > 0 ? ' has-failed' : ''}`} data-node={node.id} data-component={node.component}>
      <span className="node-role">{node.title}</span>
      <span className="node-kind" title={node.kind}>
        {node.kind}
      </span>
      <Counters role={node.role} c={c} />
    </div>
  );
}

/** Config order: a control step before the steps inside it, positions in a list in order. */
function byPath(a: Path, b: Path): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    return typeof a[i] === 'number' && typeof b[i] === 'number' ? (a[i] as number) - (b[i] as number) : String(a[i]) < String(b[i]) ? -1 : 1;
  }
  return a.length - b.length;
}

/** The counters of the steps inside control flow, each under its control step, indented by its depth. */
function Inside({ config, counters }: { config: Config; counters: ComponentCounters[] }) {
  // Only the steps the config has now: the sums keep those of runs that ended, at paths that may be gone.
  const current = counters
    .filter((c) => c.component.startsWith('pipeline.') && kindOf(componentAt(config, parsePath(c.component))) === c.kind)
    .sort((a, b) => byPath(parsePath(a.component), parsePath(b.component)));
  const steps = stepsOf(current.map((c) => ({ path: c.component, kind: c.kind })));
  if (!steps.some((s) => s.depth > 0)) return null;
  // A top-level row for each control step, heading the steps inside it.
  const heads = new Set(steps.flatMap((s) => (s.parent !== undefined && steps[s.parent].depth === 0 ? [s.parent] : [])));
  return (
    <ul className="flow-inside" aria-label="Steps inside control flow">
      {steps
        .map((s, i) => ({ s, c: current[i], shown: s.depth > 0 || heads.has(i) }))
        .filter((r) => r.shown)
        .map(({ s, c }) => (
          <li key={`${s.path} ${s.kind}`} data-component={s.path} data-depth={s.depth}>
            <span className="flow-step" title={s.path} style={{ paddingLeft: `${s.depth * 18}px` }}>
              {s.depth === 0 ? `Processor ${(s.top ?? 0) + 1}` : s.where} · {processorLabel(componentAt(config, s.segs))}
            </span>
            <Counters role="processor" c={c} />
          </li>
        ))}
    </ul>
  );
}

export function StreamFlow({ config, counters }: { config: Config; counters: ComponentCounters[] }) {
  // Matched by path and kind: counters of runs that ended stay in the sums, so after an edit a path may also
  // hold those of the kind that was there before.
  const byKey = new Map(counters.map((c) => [`${c.component} ${c.kind}`, c]));
  const of = (n: FlowNode) => byKey.get(`${n.component} ${n.configKind}`);
  const nodes = flowNodes(config);
  const main = nodes.filter((n) => n.id !== 'dead_letter');
  const dead = nodes.find((n) => n.id === 'dead_letter');
  return (
    <div className="flow card" aria-label="Pipeline">
      <div className="pipeline">
        {main.map((n, i) => (
          <Fragment key={n.id}>
            {i > 0 && <Arrow />}
            <Node node={n} c={of(n)} />
          </Fragment>
        ))}
        {dead && (
          <>
            <span className="flow-branch">failed messages</span>
            <Arrow />
            <Node node={dead} c={of(dead)} />
          </>
        )}
      </div>
      <Inside config={config} counters={counters} />
    </div>
  );
}
