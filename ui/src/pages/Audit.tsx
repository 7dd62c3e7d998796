// The audit trail: who changed what, and when, newest first, with a filter over user, action and target.
import { useState } from 'react';
import { api, ok } from '../api/client';
import type { AuditEntry } from '../api/types';
import { Empty, ErrorBanner, PageHeader } from '../components/ui';
import { ago, fmtShort, fmtTime } from '../lib/format';
import { useLoad, useNow } from '../lib/hooks';

/** How many of the latest entries the API answers. */
const LIMIT = 200;

/** Every word of the filter is in the entry's user, action or target. */
function matches(e: AuditEntry, words: string[]): boolean {
  const text = `${e.username} ${e.action} ${e.target}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

export function AuditPage() {
  const now = useNow(5000);
  // The API answers its latest 200 entries when no `limit` is given.
  const list = useLoad(() => ok(api.GET('/api/v1/audit')), [], 10000);
  const [filter, setFilter] = useState('');
  const entries = list.data ?? [];
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = words.length ? entries.filter((e) => matches(e, words)) : entries;
  const sub = !list.data
    ? undefined
    : `${entries.length === LIMIT ? `The latest ${LIMIT} changes` : `${entries.length} change${entries.length === 1 ? '' : 's'}`}, newest first${
        words.length ? `; ${shown.length} match the filter` : ''
      }.`;
  return (
    <div className="page">
      <PageHeader title="Audit" sub={sub} />
      <div className="card filter-bar">
        <label className="field-label" htmlFor="audit-filter">
          Filter
        </label>
        <input id="audit-filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="user, action or target: admin stream.delete orders" autoComplete="off" />
      </div>
      <ErrorBanner error={list.error} title="Cannot load the audit trail" />
      {list.data && entries.length === 0 && <Empty>Nothing has been changed yet.</Empty>}
      {entries.length > 0 && shown.length === 0 && <Empty>No change matches “{filter.trim()}”.</Empty>}
      {shown.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Audit trail">
            <thead>
              <tr>
                <th>When</th>
                <th>User</th>
                <th>Action</th>
                <th>Target</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((e, i) => (
                <tr key={`${e.at}-${i}`} data-action={e.action} data-target={e.target} data-user={e.username}>
                  <td className="nowrap" title={fmtTime(e.at)}>
                    {fmtShort(e.at)}
                    <div className="muted small">{ago(e.at, now)}</div>
                  </td>
                  <td className="strong">{e.username}</td>
                  <td>
                    <span className="kind">{e.action}</span>
                  </td>
                  <td>{e.target}</td>
                  <td className="muted small">{e.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

