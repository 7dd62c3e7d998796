import { useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { api, ok } from '../api/client';
import type { StreamView } from '../api/types';
import { Confirm, Empty, ErrorBanner, PageHeader, StatusBadge } from '../components/ui';
import { fmtNumber, fmtRate } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad } from '../lib/hooks';
import { RateTracker, type Rates, deleteStream, setStatus } from '../lib/streams';

export function StreamsPage() {
  const navigate = useNavigate();
  const { canEdit } = useAccess();
  const tracker = useRef(new RateTracker());
  const [rates, setRates] = useState(new Map<string, Rates>());
  const list = useLoad(
    async () => {
      const streams = await ok(api.GET('/api/v1/streams'));
      setRates(new Map(streams.map((s) => [s.id, tracker.current.push(s.id, s)])));
      return streams;
    },
    [],
    2000,
  );
  const [actionError, setActionError] = useState<unknown>();
  const [busy, setBusy] = useState<string>();
  const [deleting, setDeleting] = useState<StreamView>();
  const [deleteError, setDeleteError] = useState<unknown>();

  const toggle = async (s: StreamView) => {
    setBusy(s.id);
    setActionError(undefined);
    try {
      await setStatus(s.id, s.status === 'active' ? 'paused' : 'active');
      await list.reload();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(undefined);
    }
  };

  const doDelete = async () => {
    if (!deleting) return;
    setBusy(deleting.id);
    try {
      await deleteStream(deleting.id);
      setDeleting(undefined);
      await list.reload();
    } catch (e) {
      setDeleteError(e);
    } finally {
      setBusy(undefined);
    }
  };

  const streams = list.data ?? [];
  return (
    <div className="page">
      <PageHeader title="Streams" sub={list.data ? `${streams.length} stream${streams.length === 1 ? '' : 's'}` : undefined}>
        {canEdit && (
          <button className="btn primary" onClick={() => navigate('/streams/new')}>
            New stream
          </button>
        )}
      </PageHeader>
      <ErrorBanner error={actionError} />
      <ErrorBanner error={list.error} title="Cannot load the streams" />
      {list.data && streams.length === 0 && (
        <Empty>
          No streams yet.{canEdit && <> <Link to="/streams/new">Build the first one</Link>.</>}
        </Empty>
      )}
      {streams.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Streams">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Input → output</th>
                <th className="num">In</th>
                <th className="num">Out</th>
                <th className="num">Sent</th>
                <th className="num">Errors</th>
                {canEdit && <th className="actions-col" />}
              </tr>
            </thead>
            <tbody>
              {streams.map((s) => {
                const r = rates.get(s.id);
                return (
                  <tr key={s.id} data-stream={s.name}>
                    <td>
                      <Link to={`/streams/${s.id}`} className="strong">
                        {s.name}
                      </Link>
                      <div className="muted small">v{s.version}</div>
                    </td>
                    <td>
                      <StatusBadge status={s.status} />
                      {s.failure_reason && (
                        <div className="muted small clip" title={s.failure_reason}>
                          {s.failure_reason}
                        </div>
                      )}
                      {s.waiting && (
                        <div className="small clip waiting" title={s.waiting}>
                          waiting: {s.waiting}
                        </div>
                      )}
                    </td>
                    <td>
                      <span className="kind">{s.input_kind ?? '?'}</span> → <span className="kind">{s.output_kind ?? '?'}</span>
                    </td>
                    <td className="num">{s.status === 'active' ? fmtRate(r?.in) : '—'}</td>
                    <td className="num">{s.status === 'active' ? fmtRate(r?.out) : '—'}</td>
                    <td className="num">{fmtNumber(s.sent)}</td>
                    <td className={`num${s.failed > 0 ? ' bad' : ''}`} title={`${s.failed} failed, ${s.dropped} dropped`}>
                      {fmtNumber(s.failed)}
                    </td>
                    {canEdit && (
                      <td className="actions-col">
                        <button className="btn small" disabled={busy === s.id} onClick={() => toggle(s)}>
                          {s.status === 'active' ? 'Pause' : 'Resume'}
                        </button>
                        <button className="btn small" onClick={() => navigate(`/streams/${s.id}/edit`)}>
                          Edit
                        </button>
                        <button
                          className="btn small danger-ghost"
                          onClick={() => {
                            setDeleteError(undefined);
                            setDeleting(s);
                          }}
                        >
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <Confirm
          title={`Delete "${deleting.name}"?`}
          confirm="Delete stream"
          danger
          busy={busy === deleting.id}
          error={deleteError}
          onConfirm={doDelete}
          onCancel={() => setDeleting(undefined)}
        >
          The stream stops on its workers, and it and {deleting.version === 1 ? 'its version are' : `all its ${deleting.version} versions are`} deleted.
          This cannot be undone.
        </Confirm>
      )}
    </div>
  );
}
