// The users (admins only): who may sign in and with which role; create one, change a role, disable or enable,
// set a new password.
import { useState } from 'react';
import { api, ok } from '../api/client';
import type { UserRole, UserView } from '../api/types';
import { Confirm, ErrorBanner, NotAllowed, PageHeader, RoleBadge } from '../components/ui';
import { ROLES, ROLE_TEXT, useAccess } from '../lib/access';
import { fmtTime } from '../lib/format';
import { useLoad } from '../lib/hooks';

export function UsersPage() {
  const { me, isAdmin } = useAccess();
  if (!isAdmin) return <NotAllowed title="Users" role={me.role} what="cannot manage users: only an admin can" />;
  return <Users self={me.username} />;
}

async function update(username: string, body: { role?: UserRole; disabled?: boolean; password?: string }) {
  return ok(api.PATCH('/api/v1/users/{username}', { params: { path: { username } }, body }));
}

function Users({ self }: { self: string }) {
  const list = useLoad(() => ok(api.GET('/api/v1/users')), []);
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  const [disabling, setDisabling] = useState<UserView>();
  const [resetting, setResetting] = useState<UserView>();
  const users = list.data ?? [];

  /** A change from the table (role, enable); its answer or the API's refusal shows above the table. */
  const change = async (u: UserView, body: { role?: UserRole; disabled?: boolean }, said: (r: UserView) => string) => {
    setBusy(u.username);
    setError(undefined);
    setNotice(undefined);
    try {
      setNotice(said(await update(u.username, body)));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
      await list.reload();
    }
  };

  return (
    <div className="page">
      <PageHeader title="Users" sub={list.data ? `${users.length} user${users.length === 1 ? '' : 's'}` : undefined} />
      <NewUser
        onCreated={async (u) => {
          setError(undefined);
          setNotice(`Created ${u.username} as ${article(u.role)} ${u.role}.`);
          await list.reload();
        }}
      />
      <ErrorBanner error={error} />
      {notice && <div className="banner success">{notice}</div>}
      <ErrorBanner error={list.error} title="Cannot load the users" />
      {users.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Users">
            <thead>
              <tr>
                <th>Name</th>
                <th>Role</th>
                <th>State</th>
                <th>Created</th>
                <th className="actions-col" />
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.username} data-user={u.username}>
                  <td>
                    <span className="strong">{u.username}</span> {u.username === self && <span className="tag">you</span>}
                  </td>
                  <td>
                    {u.username === self ? (
                      // An admin keeps their own role: another admin can change it.
                      <RoleBadge role={u.role} />
                    ) : (
                      <select
                        className="inline-select"
                        aria-label={`Role of ${u.username}`}
                        value={u.role}
                        disabled={busy === u.username}
                        onChange={(e) => {
                          const role = e.target.value as UserRole;
                          void change(u, { role }, (r) => `${r.username} is now ${article(r.role)} ${r.role}: ${ROLE_TEXT[r.role]}.`);
                        }}
                      >
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {r}
                          </option>
                        ))}
                      </select>
                    )}
                  </td>
                  <td>
                    <span className={`badge ${u.disabled ? 'status-disabled' : 'status-active'}`}>{u.disabled ? 'disabled' : 'active'}</span>
                  </td>
                  <td className="muted small">{fmtTime(u.created_at)}</td>
                  <td className="actions-col">
                    <button className="btn small" disabled={busy === u.username} onClick={() => setResetting(u)}>
                      Reset password
                    </button>
                    {u.username !== self &&
                      (u.disabled ? (
                        <button className="btn small" disabled={busy === u.username} onClick={() => change(u, { disabled: false }, (r) => `${r.username} can sign in again.`)}>
                          Enable
                        </button>
                      ) : (
                        <button className="btn small danger-ghost" disabled={busy === u.username} onClick={() => setDisabling(u)}>
                          Disable
                        </button>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {disabling && (
        <Confirm
          title={`Disable ${disabling.username}?`}
          confirm="Disable user"
          danger
          onCancel={() => setDisabling(undefined)}
          onConfirm={() => {
            const u = disabling;
            setDisabling(undefined);
            void change(u, { disabled: true }, (r) => `${r.username} is disabled.`);
          }}
        >
          {disabling.username} can no longer sign in or use the API until an admin enables them again.
        </Confirm>
      )}
      {resetting && (
        <ResetPassword
          user={resetting}
          onDone={(msg) => {
            setResetting(undefined);
            if (msg) {
              setError(undefined);
              setNotice(msg);
            }
          }}
        />
      )}
    </div>
  );
}

function article(role: UserRole): string {
  return role === 'viewer' ? 'a' : 'an';
}

function NewUser({ onCreated }: { onCreated: (u: UserView) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<UserRole>('viewer');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <form
        className="card inline-form"
        aria-label="New user"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            const u = await ok(api.POST('/api/v1/users', { body: { username: username.trim(), password, role } }));
            setUsername('');
            setPassword('');
            setRole('viewer');
            onCreated(u);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <div className="field">
          <label className="field-label" htmlFor="new-user-name">
            Name
          </label>
          <input id="new-user-name" value={username} onChange={(e) => setUsername(e.target.value)} placeholder="ada" autoComplete="off" />
        </div>
        <div className="field">
          <label className="field-label" htmlFor="new-user-password">
            Password
          </label>
          <input id="new-user-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" placeholder="8 characters or more" />
        </div>
        <div className="field">
          <label className="field-label" htmlFor="new-user-role">
            Role
          </label>
          <select id="new-user-role" value={role} onChange={(e) => setRole(e.target.value as UserRole)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <p className="help grow role-help">
          <strong>{role}</strong>: {ROLE_TEXT[role]}.
        </p>
        <button className="btn primary" type="submit" disabled={busy || !username.trim() || !password}>
          Create user
        </button>
      </form>
      <ErrorBanner error={error} title="Not created" />
    </>
  );
}

function ResetPassword({ user, onDone }: { user: UserView; onDone: (msg?: string) => void }) {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await update(user.username, { password });
      onDone(`${user.username} has a new password.`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Confirm title={`Reset the password of ${user.username}`} confirm="Set password" busy={busy} confirmDisabled={!password} error={error} fieldFocus onCancel={() => onDone()} onConfirm={submit}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (password) void submit();
        }}
      >
        <div className="field">
          <label className="field-label" htmlFor="reset-password">
            New password
          </label>
          <input id="reset-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" placeholder="8 characters or more" autoFocus />
        </div>
        <p className="help">Tell {user.username} the new password; they can change it on their account page.</p>
      </form>
    </Confirm>
  );
}
