// The signed-in user's own account: their role, a new password, and their API tokens (created with a role no
// higher than theirs and the scopes they are for, shown once, revoked after a confirmation).
import { useState } from 'react';
import { Link } from 'react-router';
import { api, getSessionId, ok } from '../api/client';
import type { TokenCreated, TokenScope, TokenView, UserRole } from '../api/types';
import { Confirm, Empty, ErrorBanner, PageHeader, RoleBadge } from '../components/ui';
import { ROLES, ROLE_TEXT, atLeast, useAccess } from '../lib/access';
import { fmtTime } from '../lib/format';
import { useLoad, useNow } from '../lib/hooks';

/** What a token may be used for, as the console names each scope. */
const SCOPES: readonly { scope: TokenScope; label: string; hint: string }[] = [
  { scope: 'api', label: 'REST API', hint: 'scripts calling /api/v1, with its role' },
  { scope: 'mcp', label: 'MCP tools', hint: 'agents calling streams’ tools at /mcp' },
];

function scopeLabel(scope: TokenScope): string {
  return SCOPES.find((s) => s.scope === scope)?.label ?? scope;
}

export function AccountPage() {
  const { me } = useAccess();
  return (
    <div className="page">
      <PageHeader
        title="Account"
        sub={
          <>
            Signed in as <strong>{me.username}</strong> <RoleBadge role={me.role} /> · {ROLE_TEXT[me.role]}
          </>
        }
      />
      <ChangePassword />
      <Tokens role={me.role} />
    </div>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const mismatch = again !== '' && next !== again;
  return (
    <section className="card" aria-label="Password">
      <div className="section-head">
        <h2>Password</h2>
        <span className="muted small">8 characters or more</span>
      </div>
      <form
        className="inline-form"
        aria-label="Change password"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          setDone(false);
          try {
            await ok(api.PUT('/api/v1/auth/password', { body: { current, new: next } }));
            setCurrent('');
            setNext('');
            setAgain('');
            setDone(true);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <div className="field">
          <label className="field-label" htmlFor="password-current">
            Current password
          </label>
          <input id="password-current" type="password" value={current} onChange={(e) => setCurrent(e.target.value)} autoComplete="current-password" />
        </div>
        <div className="field">
          <label className="field-label" htmlFor="password-new">
            New password
          </label>
          <input id="password-new" type="password" value={next} onChange={(e) => setNext(e.target.value)} autoComplete="new-password" />
        </div>
        <div className={`field${mismatch ? ' has-error' : ''}`}>
          <label className="field-label" htmlFor="password-again">
            New password again
          </label>
          <input id="password-again" type="password" value={again} onChange={(e) => setAgain(e.target.value)} autoComplete="new-password" />
          {mismatch && <p className="help warn">not the same as the new password</p>}
        </div>
        <button className="btn primary" type="submit" disabled={busy || !current || !next || next !== again}>
          Change password
        </button>
      </form>
      <div className="section-foot">
        <ErrorBanner error={error} title="Not changed" />
        {done && <div className="banner success">Your password is changed: use it the next time you sign in.</div>}
      </div>
    </section>
  );
}

function Tokens({ role }: { role: UserRole }) {
  const now = useNow(60000);
  const list = useLoad(() => ok(api.GET('/api/v1/tokens')), []);
  const [created, setCreated] = useState<TokenCreated>();
  const [revoking, setRevoking] = useState<TokenView>();
  const [busy, setBusy] = useState(false);
  const [revokeError, setRevokeError] = useState<unknown>();
  const session = getSessionId();
  const tokens = list.data ?? [];
  return (
    <section className="card" aria-label="API tokens">
      <div className="section-head">
        <h2>API tokens</h2>
        <span className="muted small">
          for scripts and agents: send one as <code>Authorization: Bearer TOKEN</code>. Each sign-in to the console is a token named <em>session</em> too.
        </span>
      </div>
      <NewToken
        role={role}
        onCreated={async (t) => {
          setCreated(t);
          await list.reload();
        }}
      />
      {created && <CreatedToken token={created} onDone={() => setCreated(undefined)} />}
      <ErrorBanner error={list.error} title="Cannot load your tokens" />
      {list.data && tokens.length === 0 && <Empty>No tokens.</Empty>}
      {tokens.length > 0 && (
        <table className="table tokens" aria-label="Your tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Expires</th>
              <th className="actions-col" />
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <td>
                  <span className="strong">{t.name}</span> {t.id === session && <span className="tag">this session</span>}
                </td>
                <td>
                  <TokenRole role={t.role} mine={role} />
                </td>
                <td>
                  <TokenScopes scopes={t.scopes} />
                </td>
                <td className="muted small">{fmtTime(t.created_at)}</td>
                <td className="small">
                  {t.expires_at === null || t.expires_at === undefined ? (
                    <span className="muted">never</span>
                  ) : t.expires_at <= now ? (
                    <span className="bad">expired {fmtTime(t.expires_at)}</span>
                  ) : (
                    fmtTime(t.expires_at)
                  )}
                </td>
                <td className="actions-col">
                  <button
                    className="btn small danger-ghost"
                    onClick={() => {
                      setRevokeError(undefined);
                      setRevoking(t);
                    }}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {revoking && (
        <Confirm
          title={`Revoke ${revoking.name}?`}
          confirm="Revoke token"
          danger
          busy={busy}
          error={revokeError}
          onCancel={() => setRevoking(undefined)}
          onConfirm={async () => {
            setBusy(true);
            try {
              await ok(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id: revoking.id } } }));
              setRevoking(undefined);
              // Revoking this session ends it: the reload answers 401 and the console goes to the login page.
              await list.reload();
            } catch (e) {
              setRevokeError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {revoking.id === session
            ? 'This is the session you are using: revoking it signs you out of the console.'
            : 'Whatever uses it is refused from now on. This cannot be undone; create a new token to replace it.'}
        </Confirm>
      )}
    </section>
  );
}

/** A token's role; none is its owner's, whatever that becomes. */
function TokenRole({ role, mine }: { role: UserRole | null | undefined; mine: UserRole }) {
  if (role) return <RoleBadge role={role} />;
  return (
    <span className="small" title="It acts with your role, whatever that becomes">
      yours <span className="muted">({mine} now)</span>
    </span>
  );
}

/** A token's scopes, in the order the form offers them. */
function TokenScopes({ scopes }: { scopes: TokenScope[] }) {
  return (
    <span className="scope-tags" data-scopes={scopes.join(' ')}>
      {SCOPES.filter((s) => scopes.includes(s.scope)).map((s) => (
        <span key={s.scope} className="tag" title={`For ${s.hint}`}>
          {s.label}
        </span>
      ))}
    </span>
  );
}

function NewToken({ role, onCreated }: { role: UserRole; onCreated: (t: TokenCreated) => void }) {
  const allowed = ROLES.filter((r) => atLeast(role, r));
  const [name, setName] = useState('');
  const [expires, setExpires] = useState('30d');
  // '' is no role of its own: the token follows its owner's.
  const [tokenRole, setTokenRole] = useState<UserRole | ''>('');
  // The REST API to start with, as the API's own default; a token for an agent is MCP tools alone.
  const [scopes, setScopes] = useState<TokenScope[]>(['api']);
  const noScope = scopes.length === 0;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <form
        className="inline-form token-form"
        aria-label="New token"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            const body = {
              name: name.trim(),
              scopes,
              ...(tokenRole ? { role: tokenRole } : {}),
              ...(expires.trim() ? { expires_in: expires.trim() } : {}),
            };
            const t = await ok(api.POST('/api/v1/tokens', { body }));
            setName('');
            onCreated(t);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <div className="field grow">
          <label className="field-label" htmlFor="token-name">
            Name
          </label>
          <input id="token-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="ci, deploy script" autoComplete="off" />
        </div>
        <div className="field">
          <label className="field-label" htmlFor="token-expires">
            Expires in
          </label>
          <input id="token-expires" value={expires} onChange={(e) => setExpires(e.target.value)} placeholder="never" autoComplete="off" />
          <p className="help">30d, 12h; empty: never</p>
        </div>
        <div className="field">
          <label className="field-label" htmlFor="token-role">
            Role
          </label>
          <select id="token-role" value={tokenRole} onChange={(e) => setTokenRole(e.target.value as UserRole | '')}>
            <option value="">yours ({role} now)</option>
            {allowed.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <p className="help">no higher than yours; “yours” follows it</p>
        </div>
        <fieldset className={`field scopes${noScope ? ' has-error' : ''}`} aria-describedby={noScope ? 'token-scopes-error' : undefined}>
          <legend className="field-label">Scopes</legend>
          {SCOPES.map((s) => (
            <div key={s.scope}>
              <label className="check">
                <input
                  type="checkbox"
                  checked={scopes.includes(s.scope)}
                  onChange={(e) =>
                    setScopes((now) => SCOPES.map((o) => o.scope).filter((o) => (o === s.scope ? e.target.checked : now.includes(o))))
                  }
                  aria-describedby={`token-scope-${s.scope}-help`}
                />
                {s.label}
              </label>
              <p className="help" id={`token-scope-${s.scope}-help`}>
                {s.hint}
              </p>
            </div>
          ))}
          {noScope && (
            <p className="help warn" id="token-scopes-error" role="alert">
              check at least one: a token with no scope can be used for nothing
            </p>
          )}
        </fieldset>
        <button className="btn primary" type="submit" disabled={busy || !name.trim() || noScope}>
          Create token
        </button>
      </form>
      <ErrorBanner error={error} title="Not created" />
    </>
  );
}

/** The new token, shown this once. */
function CreatedToken({ token, onDone }: { token: TokenCreated; onDone: () => void }) {
  const [copied, setCopied] = useState<string>();
  // The clipboard API exists only on https and localhost; elsewhere the token is selected for a manual copy.
  const clipboard = typeof navigator !== 'undefined' && navigator.clipboard ? navigator.clipboard : undefined;
  return (
    <div className="banner success created-token" role="status" aria-label="New token">
      <div>
        <strong>{token.name}</strong> ({token.role ?? 'your role'}, for {token.scopes.map(scopeLabel).join(' and ')}
        {token.expires_at ? `, until ${fmtTime(token.expires_at)}` : ', no expiry'}): copy it now, it is not shown again.
        {token.scopes.includes('mcp') && (
          <>
            {' '}
            Agents use it at <code>{window.location.origin}/mcp</code>; the <Link to="/tools">MCP tools</Link> page lists what they can call.
          </>
        )}
      </div>
      <div className="token-row">
        <input className="code" readOnly value={token.token} aria-label="The new token" onFocus={(e) => e.target.select()} autoFocus />
        {clipboard && (
          <button
            type="button"
            className="btn small"
            onClick={() =>
              clipboard.writeText(token.token).then(
                () => setCopied('Copied.'),
                () => setCopied('The browser refused: select the token and copy it.'),
              )
            }
          >
            Copy
          </button>
        )}
        <button type="button" className="btn small" onClick={onDone}>
          Done
        </button>
      </div>
      <div className="small">{copied ?? (clipboard ? '' : 'Select it and copy it (Ctrl+C).')}</div>
    </div>
  );
}
