// The stream drawn as a pipeline: input, then the processors in order, then output. Processors can be added,
// removed and moved (buttons, or drag and drop).
import { useState } from 'react';
import { kindOf, summary } from '../lib/config';

export type Selection = 'input' | 'output' | 'settings' | 'resources' | 'add' | `p${number}`;

interface Props {
  input: unknown;
  processors: unknown[];
  output: unknown;
  selected: Selection;
  onSelect: (s: Selection) => void;
  onMove: (from: number, to: number) => void;
  onRemove: (i: number) => void;
  /** Problems per node. */
  errorCount: (s: Selection) => number;
  labelOf: (p: unknown) => string;
}

function Node(p: {
  role: string;
  kind?: string;
  text: string;
  selected: boolean;
  errors: number;
  onClick: () => void;
  children?: React.ReactNode;
  drag?: { onDragStart: () => void; onDrop: () => void; over: boolean; onOver: (b: boolean) => void };
  placeholder?: string;
}) {
  return (
    <div
      className={`node${p.children ? ' has-actions' : ''}${p.selected ? ' selected' : ''}${p.errors ? ' has-error' : ''}${p.drag?.over ? ' drop-target' : ''}${p.kind ? '' : ' empty'}`}
      draggable={!!p.drag}
      onDragStart={(e) => {
        e.dataTransfer.effectAllowed = 'move';
        e.dataTransfer.setData('text/plain', p.role);
        p.drag?.onDragStart();
      }}
      onDragOver={(e) => {
        if (!p.drag) return;
        e.preventDefault();
        p.drag.onOver(true);
      }}
      onDragLeave={() => p.drag?.onOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        p.drag?.onOver(false);
        p.drag?.onDrop();
      }}
      data-node={p.role}
    >
      <button type="button" className="node-main" onClick={p.onClick} aria-pressed={p.selected} aria-label={`${p.role}: ${p.kind ?? 'not chosen'}`}>
        <span className="node-role">
          {p.role}
          {p.errors > 0 && (
            <span className="err-count" title={`${p.errors} problem(s)`}>
              {p.errors}
            </span>
          )}
        </span>
        <span className="node-kind">{p.kind ?? p.placeholder}</span>
        <span className="node-text">{p.text}</span>
      </button>
      {p.children && <div className="node-actions">{p.children}</div>}
    </div>
  );
}

export const Arrow = () => (
  <svg className="arrow" viewBox="0 0 28 12" width="28" height="12" aria-hidden="true">
    <path d="M0 6h24M19 1l6 5-6 5" stroke="currentColor" strokeWidth="1.6" fill="none" />
  </svg>
);

export function Pipeline(p: Props) {
  const [dragFrom, setDragFrom] = useState<number>();
  const [over, setOver] = useState<number>();
  const n = p.processors.length;
  return (
    <div className="pipeline" aria-label="Pipeline">
      <Node role="Input" kind={kindOf(p.input)} placeholder="Choose…" text={summary(p.input)} selected={p.selected === 'input'} errors={p.errorCount('input')} onClick={() => p.onSelect('input')} />
      <Arrow />
      {p.processors.map((proc, i) => (
        <div className="node-wrap" key={i}>
          <Node
            role={`Processor ${i + 1}`}
            kind={p.labelOf(proc)}
            text={summary(proc)}
            selected={p.selected === `p${i}`}
            errors={p.errorCount(`p${i}`)}
            onClick={() => p.onSelect(`p${i}`)}
            drag={{
              onDragStart: () => setDragFrom(i),
              onDrop: () => {
                if (dragFrom !== undefined && dragFrom !== i) p.onMove(dragFrom, i);
                setDragFrom(undefined);
              },
              over: over === i && dragFrom !== i,
              onOver: (b) => setOver(b ? i : undefined),
            }}
          >
            {i > 0 && (
              <button type="button" className="icon" aria-label={`Move processor ${i + 1} earlier`} title="Move earlier" onClick={() => p.onMove(i, i - 1)}>
                ◀
              </button>
            )}
            {i < n - 1 && (
              <button type="button" className="icon" aria-label={`Move processor ${i + 1} later`} title="Move later" onClick={() => p.onMove(i, i + 1)}>
                ▶
              </button>
            )}
            <button type="button" className="icon danger" aria-label={`Remove processor ${i + 1}`} title="Remove" onClick={() => p.onRemove(i)}>
              ✕
            </button>
          </Node>
          <Arrow />
        </div>
      ))}
      <button type="button" className={`node add${p.selected === 'add' ? ' selected' : ''}`} onClick={() => p.onSelect('add')}>
        + Add processor
      </button>
      <Arrow />
      <Node role="Output" kind={kindOf(p.output)} placeholder="Choose…" text={summary(p.output)} selected={p.selected === 'output'} errors={p.errorCount('output')} onClick={() => p.onSelect('output')} />
    </div>
  );
}
