import { useMemo, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiError, api, ok } from '../api/client';
import type { MetricsHistory, VersionView } from '../api/types';
import { LineChart, type Series } from '../components/Chart';
import { LineDiff } from '../components/Diff';
import { LiveTap } from '../components/LiveTap';
import { StreamFlow } from '../components/StreamFlow';
import { Confirm, ErrorBanner, PageHeader, StatusBadge } from '../components/ui';
import { toYaml, isObj } from '../lib/config';
import { ago, fmtBytes, fmtNumber, fmtRate, fmtShort, fmtTime } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad, useNow } from '../lib/hooks';
import { RateTracker, type Rates, deleteStream, setStatus } from '../lib/streams';

export function StreamDetailPage() {
  const { id = '' } = useParams();
  const navigate = useNavigate();
  const { canEdit } = useAccess();
  const now = useNow(1000);
  const tracker = useRef(new RateTracker());
  const [rates, setRates] = useState<Rates>({});
  const stream = useLoad(
    async () => {
      const s = await ok(api.GET('/api/v1/streams/{id}', { params: { path: { id } } }));
      setRates(tracker.current.push(s.id, s));
      return s;
    },
    [id],
    2000,
  );
  const history = useLoad(() => ok(api.GET('/api/v1/streams/{id}/metrics/history', { params: { path: { id } } })), [id], 5000);
  const versions = useLoad(() => ok(api.GET('/api/v1/streams/{id}/versions', { params: { path: { id } } })), [id, stream.data?.version]);
  const [actionError, setActionError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<{ kind: 'delete' } | { kind: 'rollback'; v: VersionView }>();
  const [confirmError, setConfirmError] = useState<unknown>();
  const [tab, setTab] = useState<'overview' | 'live'>('overview');

  const s = stream.data;

  const act = async (f: () => Promise<unknown>, after?: () => void) => {
    setBusy(true);
    setActionError(undefined);
    setConfirmError(undefined);
    try {
      await f();
      setConfirm(undefined);
      after?.();
      await stream.reload();
    } catch (e) {
      if (confirm) setConfirmError(e);
      else setActionError(e);
    } finally {
      setBusy(false);
    }
  };

  if (stream.error && !s) {
    return (
      <div className="page">
        <PageHeader title="Stream" sub={<Link to="/streams">All streams</Link>} />
        <ErrorBanner error={stream.error} title={stream.error instanceof ApiError && stream.error.status === 404 ? 'Not found' : 'Cannot load the stream'} />
      </div>
    );
  }
  if (!s) return <div className="page muted">Loading…</div>;

  const cfg = isObj(s.config) ? s.config : {};

  return (
    <div className="page">
      <PageHeader
        title={
          <>
            {s.name} <StatusBadge status={s.status} />
          </>
        }
        sub={
          <>
            <Link to="/streams">All streams</Link> · version {s.version} · updated {ago(s.updated_at, now)}
          </>
        }
      >
        {canEdit && (
          <>
            <button className="btn" onClick={() => navigate(`/streams/${s.id}/edit`)}>
              Edit
            </button>
            <button className="btn" disabled={busy} onClick={() => act(() => setStatus(s.id, s.status === 'active' ? 'paused' : 'active'))}>
              {s.status === 'active' ? 'Pause' : 'Resume'}
            </button>
            <button
              className="btn danger-ghost"
              onClick={() => {
                setConfirmError(undefined);
                setConfirm({ kind: 'delete' });
              }}
            >
              Delete
            </button>
          </>
        )}
      </PageHeader>
      <ErrorBanner error={actionError} />
      {s.status === 'failed' && (
        <div className="banner error" role="alert">
          <strong>The stream failed.</strong> {s.failure_reason ? s.failure_reason.replace(/([^.!?])\s*$/, '$1.') : 'No reason was recorded.'}
          {canEdit && ' Saving a new version or resuming it runs it again.'}
        </div>
      )}

      <div className="tabs" role="tablist" aria-label="Stream views">
        {(
          [
            ['overview', 'Overview'],
            ['live', 'Live'],
          ] as const
        ).map(([key, label]) => (
          <button key={key} type="button" role="tab" aria-selected={tab === key} className={`tab${tab === key ? ' active' : ''}`} onClick={() => setTab(key)}>
            {label}
          </button>
        ))}
      </div>

      {tab === 'live' &&
        (canEdit ? (
          <LiveTap streamId={s.id} config={cfg} running={s.status === 'active' && s.replicas.some((r) => r.state === 'running')} />
        ) : (
          <p className="muted">Only editors and admins may tap a stream: its messages may hold what a viewer should not see.</p>
        ))}

      {tab === 'overview' && (
        <>
      <StreamFlow config={cfg} counters={s.components ?? []} />

      <div className="stats" aria-label="Counters">
        <Stat label="Received" value={fmtNumber(s.received)} sub={s.status === 'active' ? fmtRate(rates.in) : undefined} name="received" />
        <Stat label="Sent" value={fmtNumber(s.sent)} sub={s.status === 'active' ? fmtRate(rates.out) : undefined} name="sent" />
        <Stat label="Filtered" value={fmtNumber(s.filtered)} name="filtered" />
        <Stat label="Dropped" value={fmtNumber(s.dropped)} name="dropped" />
        <Stat label="Failed" value={fmtNumber(s.failed)} bad={s.failed > 0} sub={s.status === 'active' && rates.err ? fmtRate(rates.err) : undefined} name="failed" />
        <Stat label="Bytes in / out" value={`${fmtBytes(s.bytes_in)}`} sub={fmtBytes(s.bytes_out)} name="bytes" />
      </div>

      <div className="grid-2">
        <section className="card" aria-label="Throughput">
          <div className="section-head">
            <h2>Throughput and errors</h2>
            <span className="muted small">{history.data && history.data.samples.length > 1 ? `last ${Math.max(1, Math.round((atMs(history.data.samples[history.data.samples.length - 1].at) - atMs(history.data.samples[0].at)) / 60000))} min` : 'last 15 minutes'}</span>
          </div>
          <HistoryChart history={history.data} error={history.error} />
        </section>
        <section className="card" aria-label="Workers">
          <div className="section-head">
            <h2>Runs on</h2>
          </div>
          {s.replicas.length === 0 && <p className="muted">{s.status === 'active' ? `Waiting: ${s.waiting ?? 'for a worker to take it'}.` : 'No worker runs it while it is ' + s.status + '.'}</p>}
          <ul className="replicas">
            {s.replicas.map((r) => (
              <li key={r.worker_id}>
                <Link to="/workers" className="strong">
                  {r.worker_name}
                </Link>{' '}
                <StatusBadge status={r.state ?? 'assigned'} />
                <div className="muted small">
                  {r.version !== null && r.version !== undefined ? `runs version ${r.version}` : 'not reported yet'}
                  {r.attempts > 1 ? ` · attempt ${r.attempts}` : ''}
                </div>
                {r.reason && <div className="small bad">{r.reason}</div>}
              </li>
            ))}
          </ul>
        </section>
      </div>

      <Versions
        versions={versions.data ?? []}
        current={s.version}
        error={versions.error}
        onRollback={
          canEdit
            ? (v) => {
                setConfirmError(undefined);
                setConfirm({ kind: 'rollback', v });
              }
            : undefined
        }
      />
        </>
      )}

      {confirm?.kind === 'delete' && (
        <Confirm
          title={`Delete "${s.name}"?`}
          confirm="Delete stream"
          danger
          busy={busy}
          error={confirmError}
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => {
            setBusy(true);
            deleteStream(s.id).then(
              () => navigate('/streams'),
              (e) => {
                setConfirmError(e);
                setBusy(false);
              },
            );
          }}
        >
          The stream stops on its workers, and it and all its versions are deleted. This cannot be undone.
        </Confirm>
      )}
      {confirm?.kind === 'rollback' && (
        <Confirm
          title={`Roll back to version ${confirm.v.version}?`}
          confirm={`Roll back to version ${confirm.v.version}`}
          busy={busy}
          error={confirmError}
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => act(() => ok(api.POST('/api/v1/streams/{id}/versions/{version}/rollback', { params: { path: { id: s.id, version: confirm.v.version } }, body: {} })))}
        >
          Version {confirm.v.version}'s config is saved as a new version ({s.version + 1}); the workers restart the stream with it. The stream stays{' '}
          {s.status === 'paused' ? 'paused' : 'active'}.
        </Confirm>
      )}
    </div>
  );
}

function Stat({ label, value, sub, bad, name }: { label: string; value: string; sub?: string; bad?: boolean; name: string }) {
  return (
    <div className={`stat card${bad ? ' bad' : ''}`} data-stat={name}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      <div className="stat-sub">{sub ?? '\u00a0'}</div>
    </div>
  );
}

/** A sample's time in ms (the API answers ms since the epoch). */
function atMs(at: number | string): number {
  return typeof at === 'number' ? at : Date.parse(at);
}

function HistoryChart({ history, error }: { history?: MetricsHistory; error?: Error }) {
  const series = useMemo<Series[] | undefined>(() => {
    if (!history) return undefined;
    const s = history.samples;
    const mk = (name: string, color: string, key: 'received' | 'sent' | 'failed') => ({
      name,
      color,
      points: s.slice(1).map((x, i) => {
        const t0 = atMs(s[i].at);
        const t1 = atMs(x.at);
        const secs = Math.max(0.001, (t1 - t0) / 1000);
        return { t: t1, v: Math.max(0, (x[key] - s[i][key]) / secs) };
      }),
    });
    return [mk('received/s', '#2453d6', 'received'), mk('sent/s', '#16a34a', 'sent'), mk('failed/s', '#dc2626', 'failed')];
  }, [history]);
  if (error && !history) return <p className="muted">The metrics history is not available: {error.message}</p>;
  if (!series || !history) return <p className="muted">Loading…</p>;
  const to = history.samples.length ? atMs(history.samples[history.samples.length - 1].at) : Date.now();
  const from = Math.min(history.samples.length ? atMs(history.samples[0].at) : to, to - 60000);
  return (
    <>
      <LineChart series={series} from={from} to={to} unit={`messages per second, sampled every ${history.interval_secs} s`} />
      {history.samples.length < 2 && <p className="muted small">The first points appear within {history.interval_secs * 2} seconds.</p>}
    </>
  );
}

/** The version history; `onRollback` is given to those who may roll back. */
function Versions({ versions, current, error, onRollback }: { versions: VersionView[]; current: number; error?: Error; onRollback?: (v: VersionView) => void }) {
  const [pair, setPair] = useState<[number, number]>();
  const newest = versions[0]?.version;
  const defaultPair: [number, number] | undefined = versions.length >= 2 ? [versions[1].version, versions[0].version] : undefined;
  const [a, b] = pair ?? defaultPair ?? [0, 0];
  const va = versions.find((v) => v.version === a);
  const vb = versions.find((v) => v.version === b);
  return (
    <section className="card" aria-label="Versions">
      <div className="section-head">
        <h2>Versions</h2>
        <span className="muted small">{versions.length} saved</span>
      </div>
      <ErrorBanner error={error} />
      <div className="versions">
        <table className="table compact" aria-label="Version history">
          <thead>
            <tr>
              <th>Version</th>
              <th>Saved</th>
              <th>By</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version} className={v.version === a || v.version === b ? 'hl' : ''} data-version={v.version}>
                <td className="nowrap">
                  <strong>v{v.version}</strong> {v.version === current && <span className="tag">current</span>}
                </td>
                <td className="muted small nowrap" title={fmtTime(v.created_at)}>
                  {fmtShort(v.created_at)}
                </td>
                <td className="small saved-by" title={v.saved_by ? undefined : 'saved before users were recorded'}>
                  {v.saved_by ?? <span className="muted">—</span>}
                </td>
                <td>
                  <StatusBadge status={v.status} />
                </td>
                <td className="actions-col">
                  {v.version !== newest && (
                    <button className="btn small" title={`Compare v${v.version} with v${newest}`} onClick={() => setPair([v.version, newest])}>
                      Compare
                    </button>
                  )}
                  {onRollback && v.version !== current && (
                    <button className="btn small" onClick={() => onRollback(v)}>
                      Roll back
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <div className="diff-wrap">
          {versions.length < 2 ? (
            <p className="muted">Only one version so far: each save makes a new one, and the differences show here.</p>
          ) : (
            <>
              <div className="diff-head">
                <label>
                  From{' '}
                  <select aria-label="Compare from" value={a} onChange={(e) => setPair([Number(e.target.value), b])}>
                    {versions.map((v) => (
                      <option key={v.version} value={v.version}>
                        v{v.version}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  to{' '}
                  <select aria-label="Compare to" value={b} onChange={(e) => setPair([a, Number(e.target.value)])}>
                    {versions.map((v) => (
                      <option key={v.version} value={v.version}>
                        v{v.version}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
              {va && vb && <LineDiff before={versionText(va)} after={versionText(vb)} />}
            </>
          )}
        </div>
      </div>
    </section>
  );
}

function versionText(v: VersionView): string {
  return `# name: ${v.name}\n# status: ${v.status}\n` + toYaml(v.config);
}
