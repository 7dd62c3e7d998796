import { useState } from 'react';
import { useLocation } from 'react-router';
import { api, ok, ApiError } from '../api/client';

export function LoginPage({ onLoggedIn, expired }: { onLoggedIn: (session: { token: string; id: string }, from?: string) => void; expired: boolean }) {
  const location = useLocation();
  const state = (location.state ?? {}) as { from?: string };
  const [username, setUsername] = useState('admin');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await ok(api.POST('/api/v1/auth/login', { body: { username, password } }));
      onLoggedIn(r, state.from);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login-wrap">
      <form className="login card" onSubmit={submit}>
        <div className="brand big">
          <svg viewBox="0 0 24 24" width="30" height="30" aria-hidden="true">
            <rect width="24" height="24" rx="6" fill="currentColor" />
            <path d="M5 16h5l3-8h6" stroke="#fff" strokeWidth="2.4" fill="none" strokeLinecap="round" strokeLinejoin="round" />
          </svg>
          Airtruct
        </div>
        <h1>Sign in</h1>
        {expired && !error && <div className="notice">Your session has ended. Sign in again to go on.</div>}
        <div className="field">
          <label className="field-label" htmlFor="username">
            User name
          </label>
          <input id="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
        </div>
        <div className="field">
          <label className="field-label" htmlFor="password">
            Password
          </label>
          <input id="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} autoFocus />
        </div>
        {error && (
          <div className="banner error" role="alert">
            {error}
          </div>
        )}
        <button className="btn primary wide" type="submit" disabled={busy || !username || !password}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
