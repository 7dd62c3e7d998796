import { Suspense, lazy, useEffect, useState } from 'react';
import { Navigate, NavLink, Route, Routes, useLocation, useNavigate } from 'react-router';
import { api, getToken, ok, setOnExpired, setToken } from './api/client';
import { LoginPage } from './pages/Login';
import { StreamsPage } from './pages/Streams';
import { ProcessorsPage } from './pages/Processors';
import { WorkersPage } from './pages/Workers';
import { SecretsPage } from './pages/Secrets';

// The builder (yaml) and the stream page (diff) load on first use.
const BuilderPage = lazy(() => import('./pages/Builder').then((m) => ({ default: m.BuilderPage })));
const StreamDetailPage = lazy(() => import('./pages/StreamDetail').then((m) => ({ default: m.StreamDetailPage })));

export function App() {
  const navigate = useNavigate();
  const location = useLocation();
  const [token, setTok] = useState(getToken());
  const [user, setUser] = useState<string>();
  const [expired, setExpired] = useState(false);

  useEffect(() => {
    // The logged-out routes send every path to the login page, which says why and comes back after.
    setOnExpired(() => {
      setExpired(true);
      setTok(null);
      setUser(undefined);
    });
  }, []);

  useEffect(() => {
    if (!token) return;
    ok(api.GET('/api/v1/auth/me'))
      .then((me) => setUser(me.username))
      .catch(() => {});
  }, [token]);

  const loggedIn = (t: string, username: string, from?: string) => {
    setToken(t);
    setTok(t);
    setUser(username);
    setExpired(false);
    navigate(from && from !== '/login' ? from : '/streams', { replace: true });
  };

  const logout = async () => {
    try {
      await api.POST('/api/v1/auth/logout');
    } catch {
      // the token is dropped either way
    }
    setToken(null);
    setTok(null);
    setUser(undefined);
    navigate('/login', { replace: true });
  };

  if (!token) {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage onLoggedIn={loggedIn} expired={expired} />} />
        <Route path="*" element={<Navigate to="/login" replace state={{ from: location.pathname }} />} />
      </Routes>
    );
  }

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
            <rect width="24" height="24" rx="6" fill="currentColor" />
            <path d="M5 16h5l3-8h6" stroke="#fff" strokeWidth="2.4" fill="none" strokeLinecap="round" strokeLinejoin="round" />
          </svg>
          Airtruct
        </div>
        <NavLink to="/streams">Streams</NavLink>
        <NavLink to="/processors">Processors</NavLink>
        <NavLink to="/workers">Workers</NavLink>
        <NavLink to="/secrets">Secrets</NavLink>
      </nav>
      <div className="main">
        <header className="topbar">
          <div className="spacer" />
          <span className="user" aria-label="Signed in as">
            <span className="avatar" aria-hidden="true">
              {(user ?? '?').slice(0, 1).toUpperCase()}
            </span>
            {user ?? '…'}
          </span>
          <button className="btn ghost small" onClick={logout}>
            Log out
          </button>
        </header>
        <main className="content">
          <Suspense fallback={<div className="page muted">Loading…</div>}>
          <Routes>
            <Route path="/" element={<Navigate to="/streams" replace />} />
            <Route path="/login" element={<Navigate to="/streams" replace />} />
            <Route path="/streams" element={<StreamsPage />} />
            <Route path="/streams/new" element={<BuilderPage />} />
            <Route path="/streams/:id" element={<StreamDetailPage />} />
            <Route path="/streams/:id/edit" element={<BuilderPage />} />
            <Route path="/processors" element={<ProcessorsPage />} />
            <Route path="/processors/:name" element={<ProcessorsPage />} />
            <Route path="/workers" element={<WorkersPage />} />
            <Route path="/secrets" element={<SecretsPage />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
          </Suspense>
        </main>
      </div>
    </div>
  );
}

function NotFound() {
  return (
    <div className="page">
      <h1>Not found</h1>
      <p>
        This page does not exist. <NavLink to="/streams">Go to the streams</NavLink>.
      </p>
    </div>
  );
}
