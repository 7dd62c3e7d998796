// The Live tab of a stream: a bounded sample of the messages at each step while the tab is open
// (`GET /api/v1/streams/{id}/tap`, server-sent events read with fetch, since EventSource cannot send the token).
// Nothing is stored: closing the tab, or Stop, ends the tap.
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, getToken, ok } from '../api/client';
import type { Journey } from '../api/types';
import { ErrorBanner } from './ui';

/** One sampled message, as the API sends it. */
interface TapEvent {
  /** This page's own number for it (a React key). */
  id: number;
  step: number;
  label: string;
  payload: string;
  bytes: number;
  metadata: Record<string, string>;
  error?: string;
  at_ms: number;
}

/** How many messages the tab keeps on screen (the newest). */
const KEEP = 100;

/**
 * The steps of a stream config as the tap numbers and labels them: the input, each processor (a control step, then
 * the steps inside it: a switch's cases' processors, a try's or catch's list, a branch's processors, as the server
 * numbers them), the output.
 */
export function stepsOf(config: Record<string, unknown>): string[] {
  const kind = (c: unknown) => (c && typeof c === 'object' ? Object.keys(c as object)[0] ?? '?' : '?');
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const out: string[] = [`input (${kind(config.input)})`];
  const walk = (items: unknown[], at: string) =>
    items.forEach((p, i) => {
      const path = `${at}[${i}]`;
      const k = kind(p);
      out.push(`${path} (${k})`);
      const o = p && typeof p === 'object' ? (p as Record<string, unknown>)[k] : undefined;
      const field = (name: string) => (o && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>)[name] : undefined);
      if (k === 'switch') list(field('cases')).forEach((c, j) => walk(list(c && typeof c === 'object' ? (c as Record<string, unknown>).processors : undefined), `${path}.switch.cases[${j}].processors`));
      else if (k === 'try' || k === 'catch') walk(list(o), `${path}.${k}`);
      else if (k === 'branch') walk(list(field('processors')), `${path}.branch.processors`);
    });
  walk(list((config.pipeline as { processors?: unknown[] } | undefined)?.processors), 'pipeline.processors');
  out.push(`output (${kind(config.output)})`);
  return out;
}

function pretty(payload: string): string {
  try {
    const v = JSON.parse(payload);
    if (v !== null && typeof v === 'object') return JSON.stringify(v);
  } catch {
    // not JSON: as it is
  }
  return payload;
}

/** Reads server-sent events from `url` until `signal` aborts or the server ends them. */
async function readEvents(url: string, signal: AbortSignal, on: (event: string, data: unknown) => void): Promise<void> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { headers, signal });
  if (!response.ok || !response.body) {
    const body = await response.json().catch(() => undefined);
    throw new ApiError(response.status, (body as { error?: string } | undefined)?.error ?? `${response.status} ${response.statusText}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const frame = pending.slice(0, end);
      pending = pending.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      if (!data) continue;
      try {
        on(event, JSON.parse(data));
      } catch {
        // a frame that is not JSON: skipped
      }
    }
  }
}

/** Finds traced messages' journeys (`GET /api/v1/streams/{id}/journeys`) by trace id or `key=value`. */
function Journeys({ streamId, tracing }: { streamId: string; tracing: boolean }) {
  const [text, setText] = useState('');
  const [found, setFound] = useState<Journey[]>();
  const [error, setError] = useState<unknown>();
  const find = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const t = text.trim();
    const eq = t.indexOf('=');
    const query = t === '' ? {} : eq > 0 ? { key: t.slice(0, eq), value: t.slice(eq + 1) } : /^[0-9a-f]{16}$/.test(t) ? { trace_id: t } : { value: t };
    try {
      const r = await ok(api.GET('/api/v1/streams/{id}/journeys', { params: { path: { id: streamId }, query } }));
      setFound(r.journeys);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="card" aria-label="Journeys">
      <div className="section-head">
        <h2>Journeys</h2>
        <span className="muted small">
          {tracing ? 'traced messages, kept 15 minutes: find one by its trace_id or a metadata value (key=value)' : 'this stream traces no message: add `trace: {sample: 0.01}` to its config'}
        </span>
      </div>
      <form className="row gap" onSubmit={find} aria-label="Find a journey">
        <input aria-label="Trace id or metadata value" placeholder="trace id, key=value, or a value" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit" className="btn">
          Find
        </button>
      </form>
      <ErrorBanner error={error} title="Not found" />
      {found && found.length === 0 && <p className="muted">No journey matches.</p>}
      {found?.map((j) => (
        <div key={j.trace_id} className="journey" data-trace={j.trace_id}>
          <div className="strong small">
            trace_id {j.trace_id} · read {new Date(j.started_ms).toLocaleTimeString()}
          </div>
          <ol className="tap-events" aria-label={`Journey ${j.trace_id}`}>
            {j.steps.map((s, i) => (
              <li key={i} className={`msg${s.error ? ' failed' : ''}`} data-step={s.step}>
                <div className="muted small">
                  <span className="chip">{s.step}</span> {s.label}
                  {s.filtered && <strong> · filtered out here</strong>}
                </div>
                <pre>{pretty(s.payload)}</pre>
                {s.error && <div className="msg-error">{s.error}</div>}
              </li>
            ))}
          </ol>
        </div>
      ))}
    </section>
  );
}

export function LiveTap({ streamId, config, running }: { streamId: string; config: Record<string, unknown>; running: boolean }) {
  const steps = stepsOf(config);
  const [step, setStep] = useState<string>('');
  const [on, setOn] = useState(true);
  const [events, setEvents] = useState<TapEvent[]>([]);
  const [missed, setMissed] = useState(0);
  const [state, setState] = useState<'connecting' | 'live' | 'ended'>('connecting');
  const [error, setError] = useState<unknown>();
  const seq = useRef(0);

  useEffect(() => {
    if (!on || !running) return;
    const abort = new AbortController();
    setError(undefined);
    setState('connecting');
    const url = `/api/v1/streams/${encodeURIComponent(streamId)}/tap${step === '' ? '' : `?step=${step}`}`;
    readEvents(url, abort.signal, (event, data) => {
      if (event === 'open') setState('live');
      else if (event === 'message') setEvents((list) => [{ ...(data as TapEvent), id: seq.current++ }, ...list].slice(0, KEEP));
      else if (event === 'missed') setMissed((n) => n + Number((data as { missed?: number }).missed ?? 0));
      else if (event === 'error') setError(new ApiError(502, String((data as { error?: string }).error ?? data)));
    }).then(
      () => !abort.signal.aborted && setState('ended'),
      (e) => {
        if (abort.signal.aborted) return;
        setError(e);
        setState('ended');
      },
    );
    return () => abort.abort();
  }, [streamId, step, on, running]);

  const tracing = Boolean(config.trace);
  return (
    <>
    <section className="card" aria-label="Live">
      <div className="section-head">
        <h2>Live</h2>
        <span className="muted small" role="status">
          {!running ? 'the stream is not running' : !on ? 'stopped' : state === 'live' ? 'tapping: up to 10 messages a second per step, stored nowhere' : state === 'connecting' ? 'connecting…' : 'the tap ended'}
          {missed > 0 && ` · ${missed} missed`}
        </span>
      </div>
      <div className="row gap">
        <label className="field-inline">
          Step{' '}
          <select value={step} onChange={(e) => setStep(e.target.value)} aria-label="Step">
            <option value="">every step</option>
            {steps.map((label, i) => (
              <option key={i} value={String(i)}>
                {i} · {label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn" onClick={() => setOn((v) => !v)} disabled={!running}>
          {on ? 'Stop' : 'Start'}
        </button>
        <button type="button" className="btn" onClick={() => setEvents([])} disabled={events.length === 0}>
          Clear
        </button>
      </div>
      <ErrorBanner error={error} title="The tap stopped" />
      {events.length === 0 && running && on && <p className="muted">Waiting for messages…</p>}
      <ol className="tap-events" aria-label="Tapped messages">
        {events.map((e) => (
          <li key={e.id} className={`msg${e.error ? ' failed' : ''}`} data-step={e.step}>
            <div className="muted small">
              <span className="chip">{e.step}</span> {e.label} · {new Date(e.at_ms).toLocaleTimeString()}
              {e.bytes > e.payload.length && ` · ${e.bytes} bytes, cut`}
            </div>
            <pre>{pretty(e.payload)}</pre>
            {Object.keys(e.metadata).length > 0 && (
              <div className="meta">
                {Object.entries(e.metadata).map(([k, v]) => (
                  <span className="chip" key={k}>
                    {k}={v}
                  </span>
                ))}
              </div>
            )}
            {e.error && <div className="msg-error">{e.error}</div>}
          </li>
        ))}
      </ol>
    </section>
    <Journeys streamId={streamId} tracing={tracing} />
    </>
  );
}
