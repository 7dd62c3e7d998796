import { useState } from 'react';
import { api, ok } from '../api/client';
import type { SecretView } from '../api/types';
import { ConfirmAction, Empty, ErrorBanner, PageHeader } from '../components/ui';
import { fmtTime } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad } from '../lib/hooks';

async function putSecret(name: string, value: string) {
  return ok(api.PUT('/api/v1/secrets/{name}', { params: { path: { name } }, body: { value } }));
}

export function SecretsPage() {
  const { canEdit } = useAccess();
  const list = useLoad(() => ok(api.GET('/api/v1/secrets')), []);
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  const [replacing, setReplacing] = useState<string>();
  const [deleting, setDeleting] = useState<SecretView>();
  const secrets = list.data ?? [];
  const exists = secrets.some((s) => s.name === name.trim());

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    try {
      const s = await putSecret(name.trim(), value);
      setNotice(`${exists ? 'Replaced' : 'Created'} ${s.name}; configs use it as ${s.reference}.`);
      setName('');
      setValue('');
      await list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <PageHeader title="Secrets" sub="Values are encrypted at rest and never shown again; configs reference them as ${secret:NAME}." />
      {canEdit && (
        <form className="card inline-form" onSubmit={create} aria-label="New secret">
          <div className="field">
            <label className="field-label" htmlFor="secret-name">
              Name
            </label>
            <input id="secret-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="kafka_password" autoComplete="off" />
          </div>
          <div className="field grow">
            <label className="field-label" htmlFor="secret-value">
              Value
            </label>
            <input id="secret-value" type="password" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="new-password" />
          </div>
          <button className="btn primary" type="submit" disabled={busy || !name.trim() || !value}>
            {exists ? 'Replace secret' : 'Create secret'}
          </button>
        </form>
      )}
      <ErrorBanner error={error} />
      {notice && <div className="banner success">{notice}</div>}
      <ErrorBanner error={list.error} title="Cannot load the secrets" />
      {list.data && secrets.length === 0 && <Empty>No secrets yet.</Empty>}
      {secrets.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Reference</th>
                <th>Updated</th>
                {canEdit && <th className="actions-col" />}
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={s.name} data-secret={s.name}>
                  <td className="strong">{s.name}</td>
                  <td>
                    <code>{s.reference}</code>
                  </td>
                  <td className="muted small">{fmtTime(s.updated_at)}</td>
                  {canEdit && (
                    <td className="actions-col">
                      {replacing === s.name ? (
                        <ReplaceForm
                          name={s.name}
                          onDone={async (msg) => {
                            setReplacing(undefined);
                            if (msg) setNotice(msg);
                            await list.reload();
                          }}
                        />
                      ) : (
                        <>
                          <button className="btn small" onClick={() => setReplacing(s.name)}>
                            Replace
                          </button>
                          <button
                            className="btn small danger-ghost"
                            onClick={() => {
                              setDeleting(s);
                            }}
                          >
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <ConfirmAction
          title={`Delete ${deleting.name}?`}
          confirm="Delete secret"
          danger
          onCancel={() => setDeleting(undefined)}
          onConfirm={async () => {
            await ok(api.DELETE('/api/v1/secrets/{name}', { params: { path: { name: deleting.name } } }));
            setDeleting(undefined);
            await list.reload();
          }}
        >
          Streams that reference <code>{deleting.reference}</code> cannot start or be saved as active until it exists again.
        </ConfirmAction>
      )}
    </div>
  );
}

function ReplaceForm({ name, onDone }: { name: string; onDone: (msg?: string) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <form
      className="replace-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        try {
          await putSecret(name, value);
          onDone(`Replaced ${name}; streams that use it pick up the new value when they next start.`);
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <input type="password" aria-label={`New value of ${name}`} placeholder="new value" value={value} onChange={(e) => setValue(e.target.value)} autoFocus autoComplete="new-password" />
      <button className="btn small primary" type="submit" disabled={busy || !value}>
        Save
      </button>
      <button className="btn small" type="button" onClick={() => onDone()}>
        Cancel
      </button>
      <ErrorBanner error={error} />
    </form>
  );
}
