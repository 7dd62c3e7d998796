import { Suspense, lazy, useEffect, useMemo, useState } from 'react';
import { Navigate, NavLink, Route, Routes, useLocation, useNavigate } from 'react-router';
import { ApiError, api, getToken, ok, setOnExpired, setToken } from './api/client';
import type { Me } from './api/types';
import { ErrorBanner, NotAllowed, RoleBadge } from './components/ui';
import { AccessContext, accessOf, useAccess } from './lib/access';
import { LoginPage } from './pages/Login';
import { StreamsPage } from './pages/Streams';
import { ProcessorsPage } from './pages/Processors';
import { WorkersPage } from './pages/Workers';
import { SecretsPage } from './pages/Secrets';
import { FilesPage } from './pages/Files';
import { McpToolsPage } from './pages/McpTools';
import { AuditPage } from './pages/Audit';
import { UsersPage } from './pages/Users';
import { AccountPage } from './pages/Account';

// The builder (yaml) and the stream page (diff) load on first use.
const BuilderPage = lazy(() => import('./pages/Builder').then((m) => ({ default: m.BuilderPage })));
const StreamDetailPage = lazy(() => import('./pages/StreamDetail').then((m) => ({ default: m.StreamDetailPage })));

export function App() {
  const navigate = useNavigate();
  const location = useLocation();
  const [token, setTok] = useState(getToken());
  // Who is signed in and with which role: loaded once per session, before any page shows.
  const [me, setMe] = useState<Me>();
  const [meError, setMeError] = useState<unknown>();
  const [meTry, setMeTry] = useState(0);
  const [expired, setExpired] = useState(false);

  useEffect(() => {
    // The logged-out routes send every path to the login page, which says why and comes back after.
    setOnExpired(() => {
      setExpired(true);
      setTok(null);
      setMe(undefined);
    });
  }, []);

  useEffect(() => {
    if (!token) return;
    let current = true;
    setMeError(undefined);
    ok(api.GET('/api/v1/auth/me')).then(
      (m) => current && setMe(m),
      // A 401 ends the session (the client's rule); anything else is said, with a retry.
      (e) => current && !(e instanceof ApiError && e.status === 401) && setMeError(e),
    );
    return () => {
      current = false;
    };
  }, [token, meTry]);

  const access = useMemo(() => (me ? accessOf(me) : null), [me]);

  const loggedIn = (session: { token: string; id: string }, from?: string) => {
    setToken(session.token, session.id);
    setMe(undefined);
    setTok(session.token);
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
    setMe(undefined);
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
        {/* The sidebar runs the page's whole height; its contents stay in view as the page scrolls. */}
        <div className="sidebar-inner">
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
          <NavLink to="/files">Files</NavLink>
          {/* Not /mcp: the server answers that path itself (the endpoint agents call), so a reload there would miss the console. */}
          <NavLink to="/tools">MCP tools</NavLink>
          <NavLink to="/audit">Audit</NavLink>
          {access?.isAdmin && <NavLink to="/users">Users</NavLink>}
        </div>
      </nav>
      <div className="main">
        <header className="topbar">
          <div className="spacer" />
          {me ? (
            <NavLink to="/account" className="user" title="Your account: password and API tokens">
              <span className="avatar" aria-hidden="true">
                {me.username.slice(0, 1).toUpperCase()}
              </span>
              {me.username} <RoleBadge role={me.role} />
            </NavLink>
          ) : (
            <span className="user muted">…</span>
          )}
          <button className="btn ghost small" onClick={logout}>
            Log out
          </button>
        </header>
        <main className="content">
          {access ? (
            <AccessContext.Provider value={access}>
              <Suspense fallback={<div className="page muted">Loading…</div>}>
                <Routes>
                  <Route path="/" element={<Navigate to="/streams" replace />} />
                  <Route path="/login" element={<Navigate to="/streams" replace />} />
                  <Route path="/streams" element={<StreamsPage />} />
                  <Route path="/streams/new" element={<Editors title="New stream" what="can read streams but not create them" page={<BuilderPage />} />} />
                  <Route path="/streams/:id" element={<StreamDetailPage />} />
                  <Route path="/streams/:id/edit" element={<Editors title="Edit stream" what="can read streams but not change them" page={<BuilderPage />} />} />
                  <Route path="/processors" element={<ProcessorsPage />} />
                  <Route path="/processors/:name" element={<ProcessorsPage />} />
                  <Route path="/workers" element={<WorkersPage />} />
                  <Route path="/secrets" element={<SecretsPage />} />
                  <Route path="/files" element={<FilesPage />} />
                  <Route path="/tools" element={<McpToolsPage />} />
                  <Route path="/audit" element={<AuditPage />} />
                  <Route path="/users" element={<UsersPage />} />
                  <Route path="/account" element={<AccountPage />} />
                  <Route path="*" element={<NotFound />} />
                </Routes>
              </Suspense>
            </AccessContext.Provider>
          ) : meError ? (
            <div className="page">
              <ErrorBanner error={meError} title="Cannot load who you are" />
              <div>
                <button className="btn" onClick={() => setMeTry((n) => n + 1)}>
                  Try again
                </button>
              </div>
            </div>
          ) : (
            <div className="page muted">Loading…</div>
          )}
        </main>
      </div>
    </div>
  );
}

/** A page for editors and admins; a viewer is told so instead. */
function Editors({ title, what, page }: { title: string; what: string; page: React.ReactNode }) {
  const { canEdit, me } = useAccess();
  return canEdit ? page : <NotAllowed title={title} role={me.role} what={what} />;
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
