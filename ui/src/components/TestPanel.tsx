// Runs the builder's processors on sample messages (`POST /api/v1/streams/test`) and shows, per message, the
// output of each step, the steps inside a `switch`, `try` or `catch` indented under it; failed messages are
// highlighted with their error. What the processors could change through the stream's resources (HTTP calls other
// than GET and HEAD, SQL writes, cache writes) is refused unless **Allow side effects** is ticked. The samples and what the processors made of them can be saved as a `tests:` case
// of the stream, and the stream's cases run (`POST /api/v1/streams/tests`).
import { useState } from 'react';
import { ApiError, api, ok, type Detail } from '../api/client';
import type { CasesResponse, TestResponse } from '../api/types';
import { kindOf } from '../lib/config';
import { type Step, componentAt, splitLabel, stepsOf } from '../lib/steps';
import { ErrorBanner } from './ui';

interface Props {
  config: unknown;
  /** Sample text to start with (from a generate input's payload). */
  initial: string;
  /** Validation problems of the processors, to show at their fields. */
  onProblems: (details: Detail[]) => void;
  /** A processor's name: its kind, or an uploaded one's name. */
  labelOf: (processor: unknown) => string;
  /** The stream's `tests:` cases. */
  cases: unknown[];
  /** Adds a case to the stream's `tests:`. */
  onSaveCase: (c: Record<string, unknown>) => void;
}

/** A payload as a case writes it: JSON as a value, anything else as text. */
function asValue(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    return payload;
  }
}

type Output = TestResponse['results'][number]['steps'][number]['output'][number];

function pretty(payload: string): string {
  try {
    const v = JSON.parse(payload);
    if (v !== null && typeof v === 'object') return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ');
  } catch {
    // not JSON: shown as it is
  }
  return payload;
}

/** How many bytes a base64 text holds. */
function binaryLength(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/** What a step handed on, or failed, for one message. */
function Outputs({ output, none }: { output: Output[]; none: string }) {
  if (output.length === 0) return <div className="msg none">{none}</div>;
  return (
    <>
      {output.map((o, j) => (
        <div className={`msg${o.error ? ' failed' : ''}`} key={j}>
          {o.payload_base64 ? (
            <pre className="binary" title="binary payload, in base64">
              binary, {binaryLength(o.payload_base64)} bytes: {o.payload_base64}
            </pre>
          ) : (
            <pre>{pretty(o.payload)}</pre>
          )}
          {Object.keys(o.metadata).length > 0 && (
            <div className="meta">
              {Object.entries(o.metadata).map(([k, v]) => (
                <span className="chip" key={k}>
                  {k}={v}
                </span>
              ))}
            </div>
          )}
          {o.error && <div className="msg-error">{o.error}</div>}
        </div>
      ))}
    </>
  );
}

export function TestPanel({ config, initial, onProblems, labelOf, cases, onSaveCase }: Props) {
  const [text, setText] = useState<string>();
  const [caseName, setCaseName] = useState('');
  const [saved, setSaved] = useState<string>();
  const [caseRun, setCaseRun] = useState<CasesResponse>();
  const [caseError, setCaseError] = useState<unknown>();
  const [result, setResult] = useState<{ inputs: string[]; config: unknown; response: TestResponse }>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [sideEffects, setSideEffects] = useState(false);
  const samples = text ?? initial;
  // The steps, as the first message's trace names them (every trace names the same): a control step, then the
  // steps inside it. The columns are the top-level ones; each cell lists the steps inside indented under it.
  const steps: Step[] = stepsOf((result?.response.results[0]?.steps ?? []).map((s) => splitLabel(s.processor)));
  const tops = steps.flatMap((s, i) => (s.depth === 0 ? [i] : []));
  const ancestors = (j: number): number[] => {
    const p = steps[j]?.parent;
    return p === undefined ? [] : [p, ...ancestors(p)];
  };
  /** The steps inside top-level step `t`, at any depth, in the order they run. */
  const inside = (t: number) => steps.flatMap((_, j) => (ancestors(j).includes(t) ? [j] : []));
  /** A step's name: the processor's (an uploaded one's name), or the kind its label gives. */
  const nameOf = (s: Step) => {
    const c = componentAt(result?.config, s.segs);
    return kindOf(c) ? labelOf(c) : s.kind || s.path;
  };
  const last = tops[tops.length - 1];
  // A case writes the last step's payloads as text or JSON: binary ones (Avro, Protobuf) would be saved garbled.
  const binaryOut = last !== undefined && Boolean(result?.response.results.some((t) => t.steps[last]?.output.some((o) => !o.error && o.payload_base64)));

  const run = async () => {
    const inputs = samples.split('\n').filter((l) => l.trim() !== '');
    setBusy(true);
    setError(undefined);
    try {
      const response = await ok(
        api.POST('/api/v1/streams/test', {
          body: { config: config as never, messages: inputs.map((payload) => ({ payload, metadata: {} })), allow_side_effects: sideEffects },
        }),
      );
      setResult({ inputs, config, response });
      onProblems([]);
    } catch (e) {
      setResult(undefined);
      setError(e);
      if (e instanceof ApiError) onProblems(e.details);
    } finally {
      setBusy(false);
    }
  };

  /** The samples, and what leaves the processors as a case sees it: every message handed on by the last top-level
   * step (in sample order), then those that failed, step by step (in sample order within a step). The steps inside
   * control flow are part of their control step's; a failure that a later `catch` takes is not one that leaves. */
  const saveCase = () => {
    if (!result) return;
    const traces = result.response.results;
    const lastCatch = Math.max(-1, ...tops.filter((t) => steps[t].kind === 'catch'));
    const out =
      last === undefined
        ? result.inputs.map((p) => ({ payload: p, metadata: {}, error: null as string | null | undefined }))
        : [
            ...traces.flatMap((t) => t.steps[last].output.filter((o) => !o.error)),
            ...tops.filter((i) => i >= lastCatch).flatMap((i) => traces.flatMap((t) => t.steps[i].output.filter((o) => o.error))),
          ];
    const expect = out.map((o) => {
      const e: Record<string, unknown> = o.error ? { error: o.error } : { payload: asValue(o.payload) };
      if (Object.keys(o.metadata).length) e.metadata = o.metadata;
      return e;
    });
    const name = caseName.trim() || `case ${cases.length + 1}`;
    onSaveCase({ name, input: result.inputs.map((p) => ({ payload: asValue(p) })), expect });
    setSaved(`Saved as the test case “${name}”: save the stream to keep it.`);
    setCaseName('');
  };

  const runCases = async () => {
    setBusy(true);
    setCaseError(undefined);
    setCaseRun(undefined);
    try {
      const run = await ok(api.POST('/api/v1/streams/tests', { body: { config: config as never } }));
      if (run.errors.length > 0) {
        // The cases cannot run: the problems show at their fields, as on save.
        setCaseError(new ApiError(400, `The test cases cannot run: ${run.errors.length} problem${run.errors.length === 1 ? '' : 's'}`, run.errors));
        onProblems(run.errors);
      } else setCaseRun(run);
    } catch (e) {
      setCaseError(e);
      if (e instanceof ApiError) onProblems(e.details);
    } finally {
      setBusy(false);
    }
  };

  const lines = samples.split('\n').filter((l) => l.trim() !== '').length;
  return (
    <section className="card test-panel" aria-label="Test panel">
      <div className="section-head">
        <h2>Test the processors</h2>
        <span className="muted small">Runs them in the sandbox on your samples: the input and the output are not used.</span>
      </div>
      <div className="test-input">
        <label className="field-label" htmlFor="test-messages">
          Sample messages, one per line
        </label>
        <textarea id="test-messages" className="code" rows={4} spellCheck={false} value={samples} onChange={(e) => setText(e.target.value)} placeholder='{"name": "ada"}' />
        <div className="row">
          <button type="button" className="btn primary" onClick={run} disabled={busy || lines === 0}>
            {busy ? 'Running…' : `Run on ${lines} message${lines === 1 ? '' : 's'}`}
          </button>
          <label className="check side-effects">
            <input type="checkbox" checked={sideEffects} onChange={(e) => setSideEffects(e.target.checked)} />
            Allow side effects
          </label>
          {lines > 100 && <span className="help warn">At most 100 messages at once.</span>}
          {cases.length > 0 && (
            <button type="button" className="btn" onClick={runCases} disabled={busy}>
              Run the stream's {cases.length} test case{cases.length === 1 ? '' : 's'}
            </button>
          )}
        </div>
        <p className={`help${sideEffects ? ' warn' : ''}`} id="side-effects-help">
          {sideEffects
            ? 'Side effects allowed: the processors’ HTTP calls, SQL writes and cache writes go through the stream’s resources as in a running stream, to the services they name.'
            : 'Without side effects, a processor’s HTTP call other than GET or HEAD, SQL write or cache write is refused, and the message fails saying so; reads go through.'}
        </p>
      </div>
      <ErrorBanner error={caseError} />
      {caseRun && (
        <div className="case-results" aria-label="Test cases">
          <p className={caseRun.failed ? 'bad' : 'good'} role="status">
            {caseRun.passed} passed, {caseRun.failed} failed
          </p>
          <ul className="plain">
            {caseRun.cases.map((c, i) => (
              <li key={i} data-case={c.name} className={c.passed ? 'case ok' : 'case failed'}>
                <span className={`badge ${c.passed ? 'status-running' : 'status-failed'}`}>{c.passed ? 'ok' : 'FAIL'}</span> <span className="strong">{c.name}</span>
                {!c.passed && (
                  <>
                    <ul className="small">
                      {c.problems.map((p, j) => (
                        <li key={j}>{p}</li>
                      ))}
                    </ul>
                    {((c.expected?.length ?? 0) > 0 || c.actual.length > 0) && (
                      <pre className="case-diff">{[...(c.expected ?? []).map((e) => `- ${e}`), ...c.actual.map((a) => `+ ${a}`)].join('\n')}</pre>
                    )}
                  </>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
      <ErrorBanner error={error} />
      {result?.response.stopped && (
        <p className="help warn" role="status">
          {result.response.stopped}
        </p>
      )}
      {result && result.response.results.length > 0 && (
        <div className="trace-table" role="table" aria-label="Test results">
          <div className="trace-row head" role="row" style={{ gridTemplateColumns: `repeat(${1 + tops.length}, minmax(180px, 1fr))` }}>
            <div role="columnheader">Sample</div>
            {tops.map((t) => (
              <div role="columnheader" key={t} title={steps[t].path}>
                {steps[t].top !== undefined && <span className="step-n">{steps[t].top + 1}</span>} after {nameOf(steps[t])}
              </div>
            ))}
          </div>
          {result.response.results.map((trace, m) => (
            <div className="trace-row" role="row" key={m} data-message={m + 1} style={{ gridTemplateColumns: `repeat(${1 + tops.length}, minmax(180px, 1fr))` }}>
              <div role="cell" className="trace-cell">
                <div className="msg">
                  <pre>{pretty(result.inputs[m] ?? '')}</pre>
                </div>
              </div>
              {tops.map((t, k) => {
                const nested = inside(t);
                const before = k > 0 ? trace.steps[tops[k - 1]] : undefined;
                return (
                  <div role="cell" className="trace-cell" key={t} data-step={t + 1} data-path={steps[t].path}>
                    <Outputs output={trace.steps[t]?.output ?? []} none={before?.output.every((o) => o.error) ? 'nothing reached this step' : 'filtered out: no message'} />
                    {nested.length > 0 && (
                      <ol className="trace-inside" aria-label={`Steps inside ${nameOf(steps[t])}`}>
                        {nested.map((j) => (
                          <li key={j} className="trace-sub" data-step={j + 1} data-path={steps[j].path} data-depth={steps[j].depth} style={{ marginLeft: `${(steps[j].depth - 1) * 14}px` }}>
                            <div className="trace-sub-label" title={steps[j].path}>
                              {steps[j].where} · {nameOf(steps[j])}
                            </div>
                            <Outputs output={trace.steps[j]?.output ?? []} none="no message here" />
                          </li>
                        ))}
                      </ol>
                    )}
                  </div>
                );
              })}
            </div>
          ))}
        </div>
      )}
      {result && result.response.results[0]?.steps.length === 0 && <p className="muted">This stream has no processors: each message goes to the output as it is.</p>}
      {result && result.response.results.length > 0 && !result.response.stopped && (
        <div className="row save-case">
          <input aria-label="Test case name" placeholder={`case ${cases.length + 1}`} value={caseName} onChange={(e) => setCaseName(e.target.value)} />
          <button
            type="button"
            className="btn"
            onClick={saveCase}
            disabled={binaryOut}
            title={binaryOut ? 'A test case compares text and JSON payloads; these processors make binary ones' : undefined}
          >
            Save as test case
          </button>
          {binaryOut && <span className="help">A binary payload cannot be written in a test case.</span>}
          {saved && (
            <span className="help" role="status">
              {saved}
            </span>
          )}
        </div>
      )}
    </section>
  );
}
