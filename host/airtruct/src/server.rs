//! The long-running processes: `standalone` (coordinator and a worker in one process, SQLite under a data
//! directory), `coordinator` and `worker`. Each has one root cancellation token, cancelled by Ctrl-C or SIGTERM;
//! the worker then drains its streams and the server stops accepting requests.

use airtruct_runtime::Tasks;
use airtruct_runtime::ingest::IngestHub;
use airtruct_runtime::policy::Policy;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airtruct_auth::SecretKey;
use airtruct_engine::Engine;
use airtruct_store::Store;
use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::coordinator::{Coordinator, Timing};
use crate::worker::{Client, Worker};

/// Settings that may also come from a config file (`--config`); flags and environment variables win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub worker_token: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub console_dir: Option<PathBuf>,
    pub coordinator: Option<String>,
    pub coordinator_ca: Option<PathBuf>,
    pub name: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// What streams saved through the API may touch (see docs/security.md).
    pub policy: Option<Policy>,
}

impl FileSettings {
    pub fn read(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file \"{}\"", path.display()))?;
        serde_yaml::from_str(&text).with_context(|| format!("config file \"{}\"", path.display()))
    }
}

/// Resolved settings of a coordinator (or of standalone).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub admin_password: Option<String>,
    pub worker_token: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: PathBuf,
    /// The built web console, served at `/` (none: the API only).
    pub console_dir: Option<PathBuf>,
    /// What streams saved through the API may touch; the server adds its own files and listeners to it.
    pub policy: Policy,
    /// HTTPS: the certificate chain and key files (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Resolved settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub coordinator: String,
    /// Certificates to trust for an `https://` coordinator.
    pub coordinator_ca: Option<PathBuf>,
    pub worker_token: String,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub name: String,
    /// Where this worker takes `/ingest/...` requests forwarded by the coordinator.
    pub ingest_listen: Option<SocketAddr>,
    /// The URL the coordinator uses to reach `ingest_listen`.
    pub ingest_url: Option<String>,
}

/// Sets a file's or folder's mode (the server's own files are its own: 0700 folders, 0600 files).
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of \"{}\" to {mode:o}", path.display()))?;
    }
    Ok(())
}

/// Refuses to start on a key file that others may read.
fn refuse_shared(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            anyhow::bail!(
                "\"{}\" can be read by other users (mode {:o}): make it private (chmod 600) before starting",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(())
}

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    hex::encode(buf)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating \"{}\"", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The worker token: as given, or read from `DATA_DIR/worker-token`, created on first start.
fn worker_token(s: &ServerSettings) -> anyhow::Result<String> {
    if let Some(t) = &s.worker_token {
        return Ok(t.clone());
    }
    let path = s.data_dir.join("worker-token");
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = format!("wt_{}", random_hex(32));
            write_private(&path, &token)?;
            tracing::info!(file = %path.display(), "created the worker token: workers need it (--worker-token)");
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading \"{}\"", path.display())),
    }
}

fn secret_key(given: Option<&str>, file: &Path, create: bool) -> anyhow::Result<SecretKey> {
    let key = match given {
        Some(k) => SecretKey::from_base64(k),
        None if create => SecretKey::load_or_create(file),
        None => std::fs::read_to_string(file)
            .map_err(|e| {
                airtruct_auth::AuthError::Key(format!("reading \"{}\": {e}", file.display()))
            })
            .and_then(|t| SecretKey::from_base64(&t)),
    };
    key.context("loading the secret key")
}

/// Creates the user `admin` when there is no user yet: with the given password, or a random one printed once.
async fn bootstrap_admin(store: &Store, password: Option<&str>) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        if password.is_some() {
            tracing::info!("AIRTRUCT_ADMIN_PASSWORD is ignored: users exist already");
        }
        return Ok(());
    }
    let (password, generated) = match password {
        Some(p) if !p.is_empty() => (p.to_string(), false),
        _ => (random_hex(12), true),
    };
    let hash = airtruct_auth::hash_password(&password)?;
    match store.create_user("admin", &hash, "admin").await {
        // Another coordinator on the same store created it first.
        Err(airtruct_store::StoreError::Conflict(_)) => return Ok(()),
        other => other?,
    };
    if generated {
        eprintln!(
            "\n  Created user \"admin\" with password: {password}\n  \
             It is shown only this once. Set AIRTRUCT_ADMIN_PASSWORD on first start to choose it.\n"
        );
    } else {
        tracing::info!("created user \"admin\" with the password from AIRTRUCT_ADMIN_PASSWORD");
    }
    Ok(())
}

fn shutdown_on_signals(tasks: &Tasks, shutdown: CancellationToken) {
    tasks.spawn("signals", async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: draining streams");
        shutdown.cancel();
    });
}

/// Runs a coordinator, and a worker in the same process when `standalone`.
pub async fn run_server(
    settings: ServerSettings,
    engine: Engine,
    standalone: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating data directory \"{}\"",
            settings.data_dir.display()
        )
    })?;
    set_mode(&settings.data_dir, 0o700)?;
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("opening the store at {}", redact(&settings.database_url)))?;
    if let Some(file) = settings.database_url.strip_prefix("sqlite://") {
        let file = file.split('?').next().unwrap_or(file);
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{file}{suffix}"));
            if path.exists() {
                set_mode(&path, 0o600)?;
            }
        }
    }
    for key in [
        &settings.secret_key_file,
        &settings.data_dir.join("worker-token"),
    ] {
        refuse_shared(key)?;
    }
    let key = Arc::new(secret_key(
        settings.secret_key.as_deref(),
        &settings.secret_key_file,
        true,
    )?);
    let token = worker_token(&settings)?;
    bootstrap_admin(&store, settings.admin_password.as_deref()).await?;
    let ingest = IngestHub::default();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = match &settings.tls {
        Some((cert, key)) => {
            crate::listener::ServerListener::tls(listener, crate::listener::tls_config(cert, key)?)?
        }
        None => crate::listener::ServerListener::Plain(listener),
    };
    let policy = Arc::new(server_policy(&settings, &engine, addr)?);
    let coordinator = Arc::new(Coordinator::new(
        store,
        engine.clone(),
        key.clone(),
        &token,
        Timing::default(),
        ingest.clone(),
        policy,
    ));
    coordinator.set_address(format!("{scheme}://{addr}"));

    let shutdown = CancellationToken::new();
    let tasks = Tasks::default();
    shutdown_on_signals(&tasks, shutdown.clone());
    tracing::info!(%addr, standalone, data_dir = %settings.data_dir.display(), "airtruct is up: API at {scheme}://{addr}/api/v1");
    match &settings.console_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            tracing::info!(dir = %dir.display(), "web console at {scheme}://{addr}/")
        }
        Some(dir) => tracing::warn!(
            dir = %dir.display(),
            "the web console is not built there: run `npm --prefix ui ci && npm --prefix ui run build`"
        ),
        None => {}
    }
    let mut running = vec![
        tasks.spawn(
            "coordinator: placement",
            coordinator.clone().run_scheduler(shutdown.clone()),
        ),
        tasks.spawn(
            "coordinator: counter history",
            coordinator.clone().run_sampler(shutdown.clone()),
        ),
    ];
    if standalone {
        let worker = Worker::new(
            Client::Local(coordinator.clone()),
            engine,
            Some(key),
            "standalone".into(),
            ingest,
            tasks.clone(),
        );
        running.push(tasks.spawn("worker standalone", worker.run(shutdown.clone())));
    }
    let served = crate::api::serve(
        listener,
        coordinator,
        settings.console_dir.clone(),
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    // The worker drains its streams (each within its grace period); then every task has ended.
    for task in running {
        let _ = task.await;
    }
    // The signal handler waits for a second signal that may never come; anything else still here is stuck.
    let left: Vec<String> = tasks
        .abort_all()
        .into_iter()
        .filter(|t| t != "signals")
        .collect();
    if !left.is_empty() {
        tracing::warn!(tasks = ?left, "tasks still running at exit: aborted");
    }
    served.context("serving HTTP")
}

/// The operator's policy with the server's own files refused and its own listener denied; the path roots are
/// created when missing.
fn server_policy(
    settings: &ServerSettings,
    engine: &Engine,
    listening: SocketAddr,
) -> anyhow::Result<Policy> {
    let mut policy = settings.policy.clone();
    for root in &policy.paths {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the path root \"{}\"", root.display()))?;
    }
    policy.refused_paths.push(settings.data_dir.clone());
    policy.refused_paths.push(settings.secret_key_file.clone());
    if let Some(file) = settings.database_url.strip_prefix("sqlite://") {
        policy
            .refused_paths
            .push(PathBuf::from(file.split('?').next().unwrap_or(file)));
    }
    if let Some(cache) = &engine.config().cache_dir {
        policy.refused_paths.push(cache.clone());
    }
    policy.egress.own_listeners.push(listening);
    Ok(policy)
}

/// Runs a worker that takes its streams from a coordinator.
pub async fn run_worker(settings: WorkerSettings, engine: Engine) -> anyhow::Result<()> {
    let key = match (&settings.secret_key, &settings.secret_key_file) {
        (None, None) => None,
        (given, file) => Some(Arc::new(secret_key(
            given.as_deref(),
            file.as_deref().unwrap_or(Path::new("")),
            false,
        )?)),
    };
    if key.is_none() {
        tracing::info!("no secret key: streams that use secrets will fail on this worker");
    }
    let shutdown = CancellationToken::new();
    let tasks = Tasks::default();
    shutdown_on_signals(&tasks, shutdown.clone());
    let client = Client::remote(
        &settings.coordinator,
        &settings.worker_token,
        settings.coordinator_ca.as_deref(),
    )?;
    let ingest = IngestHub::default();
    let mut worker = Worker::new(
        client.clone(),
        engine,
        key,
        settings.name.clone(),
        ingest.clone(),
        tasks.clone(),
    );
    if let Some(addr) = settings.ingest_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for ingest requests on {addr}"))?;
        let bound = listener.local_addr()?;
        let url = settings.ingest_url.clone().unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                format!("http://{}:{}", settings.name, bound.port())
            } else {
                format!("http://{bound}")
            }
        });
        tracing::info!(%bound, %url, "taking ingest requests forwarded by the coordinator");
        worker.ingest_url = Some(url);
        let app = ingest_listener(client.clone(), ingest);
        let stop = shutdown.clone();
        tasks.spawn("worker: ingest listener", async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
    }
    worker.run(shutdown).await;
    Ok(())
}

/// A worker's ingest listener: only the coordinator calls it, with this worker's forward token. The coordinator
/// checked the caller's bearer token before forwarding and sends no caller credentials; the signature of a
/// body is checked here, where the body is.
fn ingest_listener(client: Client, hub: IngestHub) -> axum::Router {
    use crate::api::ingest::{FORWARD_HEADER, MAX_BODY};
    use airtruct_connectors::inputs::http_server::{await_reply, from_http, to_http};
    use airtruct_runtime::ingest::IngestResponse;
    use axum::extract::{Path, Request, State};

    /// The refusal of a request without this worker's forward token, which only the coordinator has.
    fn not_from_coordinator(
        client: &Client,
        headers: &axum::http::HeaderMap,
    ) -> Option<axum::response::Response> {
        let given = headers
            .get(FORWARD_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let expected = client.forward_token().unwrap_or_default();
        if expected.is_empty()
            || !airtruct_runtime::ingest::constant_time_eq(given.as_bytes(), expected.as_bytes())
        {
            return Some(to_http(IngestResponse::error(
                401,
                "this listener takes requests from the coordinator only",
            )));
        }
        None
    }

    async fn take(
        hub: &IngestHub,
        client: &Client,
        stream: String,
        rest: String,
        mut req: Request,
    ) -> axum::response::Response {
        if let Some(refused) = not_from_coordinator(client, req.headers()) {
            return refused;
        }
        req.headers_mut().remove(FORWARD_HEADER);
        let headers = req.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match hub.precheck_forwarded(&stream, req.method().as_str(), header) {
            None => {
                return to_http(IngestResponse::error(
                    503,
                    "the stream does not run on this worker now; send it again",
                ));
            }
            Some(Err(refused)) => return to_http(refused),
            Some(Ok(())) => {}
        }
        let (mut request, rx) = match from_http(req, format!("/{rest}"), MAX_BODY).await {
            Ok(r) => r,
            Err(refused) => return to_http(refused),
        };
        request.token_checked = true;
        if let Err(busy) = hub.dispatch(&stream, request) {
            return to_http(busy);
        }
        // The coordinator bounds the wait with the stream's timeout.
        to_http(await_reply(rx, std::time::Duration::from_secs(600)).await)
    }
    /// The live tap of a stream running here, relayed by the coordinator (which checked the caller's role).
    async fn tap(
        hub: &IngestHub,
        client: &Client,
        stream: String,
        step: Option<usize>,
        headers: &axum::http::HeaderMap,
    ) -> axum::response::Response {
        if let Some(refused) = not_from_coordinator(client, headers) {
            return refused;
        }
        let Some(watches) = hub.taps().watch(&stream) else {
            return to_http(IngestResponse::error(
                409,
                "the stream does not run on this worker now",
            ));
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        crate::api::tap::pump_local(watches, step, &tx);
        crate::api::tap::event_stream(rx)
    }
    #[derive(serde::Deserialize)]
    struct TapQuery {
        step: Option<usize>,
    }
    type Shared = State<(IngestHub, Client)>;
    axum::Router::new()
        .route(
            "/journeys/{stream}",
            axum::routing::get(
                |State((hub, client)): Shared,
                 Path(stream): Path<String>,
                 axum::extract::Query(q): axum::extract::Query<crate::api::journeys::JourneyQuery>,
                 headers: axum::http::HeaderMap| async move {
                    use axum::response::IntoResponse;
                    if let Some(refused) = not_from_coordinator(&client, &headers) {
                        return refused;
                    }
                    axum::Json(crate::api::journeys::JourneysView {
                        journeys: crate::api::journeys::local_journeys(hub.taps(), &stream, &q),
                        unreachable: Vec::new(),
                    })
                    .into_response()
                },
            ),
        )
        .route(
            "/tap/{stream}",
            axum::routing::get(
                |State((hub, client)): Shared,
                 Path(stream): Path<String>,
                 axum::extract::Query(q): axum::extract::Query<TapQuery>,
                 headers: axum::http::HeaderMap| async move {
                    tap(&hub, &client, stream, q.step, &headers).await
                },
            ),
        )
        .route(
            "/ingest/{stream}",
            axum::routing::any(
                |State((hub, client)): Shared, Path(stream): Path<String>, req: Request| async move {
                    take(&hub, &client, stream, String::new(), req).await
                },
            ),
        )
        .route(
            "/ingest/{stream}/{*rest}",
            axum::routing::any(
                |State((hub, client)): Shared,
                 Path((stream, rest)): Path<(String, String)>,
                 req: Request| async move { take(&hub, &client, stream, rest, req).await },
            ),
        )
        .with_state((hub, client))
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
