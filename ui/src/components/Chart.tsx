// A small hand-drawn SVG line chart of rates over time.

export interface Series {
  name: string;
  color: string;
  points: { t: number; v: number }[];
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function LineChart({ series, from, to, unit, height = 180 }: { series: Series[]; from: number; to: number; unit: string; height?: number }) {
  const W = 720;
  const H = height;
  const pad = { l: 46, r: 12, t: 10, b: 24 };
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const x = (t: number) => pad.l + ((t - from) / Math.max(1, to - from)) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const minutes: number[] = [];
  const step = [10e3, 15e3, 30e3, 60e3, 120e3, 300e3].find((st) => (to - from) / st <= 6) ?? 300e3;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) minutes.push(t);
  const timeFmt: Intl.DateTimeFormatOptions = step < 60e3 ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false } : { hour: '2-digit', minute: '2-digit', hour12: false };
  const label = (v: number) => (v >= 1000 ? `${Number((v / 1000).toFixed(1))}k` : String(Number(v.toFixed(2))));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${series.map((s) => s.name).join(' and ')} over time`}>
        {ticks.map((v, i) => (
          <g key={i}>
            <line x1={pad.l} x2={W - pad.r} y1={y(v)} y2={y(v)} className="grid" />
            <text x={pad.l - 6} y={y(v) + 4} textAnchor="end" className="axis">
              {label(v)}
            </text>
          </g>
        ))}
        {minutes.map((t) => (
          <text key={t} x={x(t)} y={H - 6} textAnchor="middle" className="axis">
            {new Date(t).toLocaleTimeString(undefined, timeFmt)}
          </text>
        ))}
        {series.map((s) =>
          s.points.length > 1 ? (
            <polyline key={s.name} fill="none" stroke={s.color} strokeWidth="2" strokeLinejoin="round" points={s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')} />
          ) : null,
        )}
      </svg>
      <figcaption>
        {series.map((s) => (
          <span key={s.name} className="legend">
            <i style={{ background: s.color }} /> {s.name}
          </span>
        ))}
        <span className="muted small">{unit}</span>
      </figcaption>
    </figure>
  );
}
