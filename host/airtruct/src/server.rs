//! The long-running processes: `standalone` (coordinator and a worker in one process, SQLite under a data
//! directory), `coordinator` and `worker`. Each has one root cancellation token, cancelled by Ctrl-C or SIGTERM;
//! the worker then drains its streams and the server stops accepting requests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airtruct_auth::SecretKey;
use airtruct_engine::Engine;
use airtruct_store::Store;
use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    pub coordinator: Option<String>,
    pub name: Option<String>,
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
}

/// Resolved settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub coordinator: String,
    pub worker_token: String,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub name: String,
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
    store.create_user("admin", &hash).await?;
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

fn shutdown_on_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
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
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("opening the store at {}", redact(&settings.database_url)))?;
    let key = Arc::new(secret_key(
        settings.secret_key.as_deref(),
        &settings.secret_key_file,
        true,
    )?);
    let token = worker_token(&settings)?;
    bootstrap_admin(&store, settings.admin_password.as_deref()).await?;
    let coordinator = Arc::new(Coordinator::new(
        store,
        engine.clone(),
        key.clone(),
        &token,
        Timing::default(),
    ));

    let shutdown = CancellationToken::new();
    shutdown_on_signals(shutdown.clone());
    let tasks = TaskTracker::new();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, standalone, data_dir = %settings.data_dir.display(), "airtruct is up: API at http://{addr}/api/v1");
    tasks.spawn(coordinator.clone().run_scheduler(shutdown.clone()));
    if standalone {
        let worker = Worker::new(
            Client::Local(coordinator.clone()),
            engine,
            Some(key),
            "standalone".into(),
        );
        tasks.spawn(worker.run(shutdown.clone()));
    }
    let served = crate::api::serve(listener, coordinator, shutdown.clone()).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served.context("serving HTTP")
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
    shutdown_on_signals(shutdown.clone());
    let client = Client::remote(&settings.coordinator, &settings.worker_token);
    Worker::new(client, engine, key, settings.name)
        .run(shutdown)
        .await;
    Ok(())
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
