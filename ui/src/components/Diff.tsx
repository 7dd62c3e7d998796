import { diffLines } from 'diff';

/** A line diff of two texts: removed lines in red, added in green, unchanged ones for context. */
export function LineDiff({ before, after }: { before: string; after: string }) {
  const parts = diffLines(before, after);
  const rows: { kind: ' ' | '+' | '-'; text: string }[] = [];
  for (const p of parts) {
    const lines = p.value.replace(/\n$/, '').split('\n');
    for (const l of lines) rows.push({ kind: p.added ? '+' : p.removed ? '-' : ' ', text: l });
  }
  const changed = rows.some((r) => r.kind !== ' ');
  return (
    <div className="diff" aria-label="Differences">
      {!changed && <div className="muted small diff-same">The two versions have the same config.</div>}
      {rows.map((r, i) => (
        <div key={i} className={`diff-line ${r.kind === '+' ? 'add' : r.kind === '-' ? 'del' : ''}`}>
          <span className="diff-sign">{r.kind}</span>
          <span>{r.text || ' '}</span>
        </div>
      ))}
    </div>
  );
}
