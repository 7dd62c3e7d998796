import { useState } from 'react';
import { Link } from 'react-router';
import { ApiError, api, ok } from '../api/client';
import type { WorkerView } from '../api/types';
import { Confirm, Empty, ErrorBanner, PageHeader, StatusBadge } from '../components/ui';
import { ago, fmtTime } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad, useNow } from '../lib/hooks';

export function WorkersPage() {
  const now = useNow(1000);
  const { canEdit } = useAccess();
  const workers = useLoad(() => ok(api.GET('/api/v1/workers')), [], 3000);
  const streams = useLoad(() => ok(api.GET('/api/v1/streams')), [], 10000);
  const coordinators = useLoad(() => ok(api.GET('/api/v1/coordinators')), [], 5000);
  const [drain, setDrain] = useState<WorkerView>();
  // The server's warning when draining would leave streams with no worker: shown, then a forced drain.
  const [warning, setWarning] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const resume = async (w: WorkerView) => {
    setError(undefined);
    try {
      await ok(api.POST('/api/v1/workers/{id}/resume', { params: { path: { id: w.id } } }));
      await workers.reload();
      await streams.reload();
    } catch (e) {
      setError(e);
    }
  };
  const names = new Map((streams.data ?? []).map((s) => [s.id, s.name]));
  const list = workers.data ?? [];
  return (
    <div className="page">
      <PageHeader title="Workers" sub={workers.data ? `${list.filter((w) => w.state === 'alive').length} alive of ${list.length}` : undefined} />
      <ErrorBanner error={workers.error} title="Cannot load the workers" />
      {!drain && <ErrorBanner error={error} />}
      {workers.data && list.length === 0 && <Empty>No worker has registered yet.</Empty>}
      {list.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Workers">
            <thead>
              <tr>
                <th>Name</th>
                <th>State</th>
                <th>Last heartbeat</th>
                <th>Started</th>
                <th>Streams it runs</th>
                {canEdit && <th className="actions-col" />}
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr key={w.id} data-worker={w.name}>
                  <td>
                    <span className="strong">{w.name}</span>
                    <div className="muted small">{w.id}</div>
                  </td>
                  <td>
                    <StatusBadge status={w.state} />
                  </td>
                  <td title={fmtTime(w.last_heartbeat)}>{ago(w.last_heartbeat, now)}</td>
                  <td className="muted small">{fmtTime(w.started_at)}</td>
                  <td>
                    {w.streams.length === 0 && <span className="muted">none</span>}
                    <ul className="plain">
                      {w.streams.map((r) => (
                        <li key={r.stream_id}>
                          <Link to={`/streams/${r.stream_id}`}>{names.get(r.stream_id) ?? r.stream_id}</Link> <StatusBadge status={r.state} />{' '}
                          <span className="muted small">v{r.version}</span>
                          {r.reason && <div className="small bad">{r.reason}</div>}
                        </li>
                      ))}
                    </ul>
                  </td>
                  {canEdit && (
                    <td className="actions-col">
                      {w.state === 'alive' && (
                        <button
                          className="btn small"
                          onClick={() => {
                            setError(undefined);
                            setWarning(undefined);
                            setDrain(w);
                          }}
                        >
                          Drain
                        </button>
                      )}
                      {w.state === 'draining' && (
                        <button className="btn small" onClick={() => resume(w)}>
                          Resume
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {coordinators.data && (
        <section className="card" aria-label="Coordinators">
          <div className="section-head">
            <h2>Coordinators</h2>
            <span className="muted small">every one serves the API and the console; the leader places streams, and another leads within seconds when it stops</span>
          </div>
          <table className="table">
            <thead>
              <tr>
                <th>Address</th>
                <th>Role</th>
                <th>Last seen</th>
                <th>Started</th>
              </tr>
            </thead>
            <tbody>
              {coordinators.data.map((c) => (
                <tr key={c.id} data-coordinator={c.address}>
                  <td>
                    <span className="strong">{c.address}</span>
                    {c.this && <span className="muted small"> (answering you)</span>}
                    <div className="muted small">{c.id}</div>
                  </td>
                  <td>{c.leader ? <span className="badge status-running">leader</span> : <span className="badge">standby</span>}</td>
                  <td title={fmtTime(c.last_seen)}>{ago(c.last_seen, now)}</td>
                  <td className="muted small">{fmtTime(c.started_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <ErrorBanner error={coordinators.error} title="Cannot load the coordinators" />
      {drain && (
        <Confirm
          title={`Drain ${drain.name}?`}
          confirm={warning ? 'Drain anyway' : 'Drain worker'}
          danger={!!warning}
          busy={busy}
          error={error}
          onCancel={() => setDrain(undefined)}
          onConfirm={async () => {
            setBusy(true);
            try {
              const force = !!warning;
              await ok(api.POST('/api/v1/workers/{id}/drain', { params: { path: { id: drain.id }, query: { force } } }));
              setDrain(undefined);
              await workers.reload();
              await streams.reload();
            } catch (e) {
              // The last alive worker: the server names the streams that would stop; the next click forces it.
              if (e instanceof ApiError && e.status === 409 && e.details.length > 0) setWarning(e);
              else setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {warning ? (
            <div className="notice" role="alert">
              <p>
                <strong>{drain.name}</strong> is the last alive worker. Draining it stops these streams until it is resumed or another worker joins:
              </p>
              <ul className="plain" aria-label="Streams that stop">
                {warning.details.map((d) => {
                  const id = d.path.replace(/^streams\./, '');
                  return (
                    <li key={d.path}>
                      <Link to={`/streams/${id}`}>{names.get(id) ?? id}</Link>
                    </li>
                  );
                })}
              </ul>
            </div>
          ) : (
            <>Its streams move to other workers and it gets no new ones, until it is resumed here or restarts.</>
          )}
        </Confirm>
      )}
    </div>
  );
}
