//! Command-line parsing, the `run` and `validate` commands, and the settings of the long-running processes
//! (`standalone`, `coordinator`, `worker`), each from a flag, an environment variable or a config file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use airtruct_engine::{Engine, EngineConfig};
use airtruct_model::{ValidationError, parse_text};
use airtruct_runtime::{
    BuildContext, StreamExit, StreamMetrics, Uploaded, build_stream, run_stream, validate_stream,
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::server::{FileSettings, ServerSettings, WorkerSettings, run_server, run_worker};

/// Airtruct: a stream-processing server whose processors are WebAssembly components.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Args)]
struct Global {
    /// Log filter (`info`, `debug`, `airtruct_runtime=debug`); RUST_LOG works too.
    #[arg(long, env = "AIRTRUCT_LOG", default_value = "info", global = true)]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "AIRTRUCT_LOG_JSON", global = true)]
    log_json: bool,
    /// Where compiled components are cached (default: the user's cache directory, `airtruct/components`).
    #[arg(long, env = "AIRTRUCT_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// The most memory a processor may ask for in its `limits.memory_mib` (the default per processor is 256).
    #[arg(
        long,
        env = "AIRTRUCT_MAX_PROCESSOR_MEMORY_MIB",
        default_value_t = 1024,
        global = true
    )]
    max_processor_memory_mib: u32,
    /// The largest component accepted (uploads and files), in MiB.
    #[arg(
        long,
        env = "AIRTRUCT_MAX_COMPONENT_MIB",
        default_value_t = 32,
        global = true
    )]
    max_component_mib: u32,
    /// How long compiling one component may take (`60s`); an upload that takes longer is refused.
    #[arg(
        long,
        env = "AIRTRUCT_COMPILE_TIMEOUT",
        default_value = "60s",
        value_parser = humantime::parse_duration,
        global = true
    )]
    compile_timeout: std::time::Duration,
    /// Servers compile the built-in processors in the background at startup, so the first stream does not wait
    /// for the compiler (`--prewarm=false` compiles each when a stream first needs it).
    #[arg(
        long,
        env = "AIRTRUCT_PREWARM",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    prewarm: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a stream file in the foreground; exits when a finite input is exhausted and drained, or on Ctrl-C
    /// after draining what is in flight.
    Run {
        /// The stream config, YAML or JSON.
        file: PathBuf,
    },
    /// Checks a stream file, including each processor's `init`, and prints every problem with its path.
    Validate {
        /// The stream config, YAML or JSON.
        file: PathBuf,
    },
    /// Runs the `tests:` cases of a stream file through its processors (the input and output are not opened) and
    /// prints each case, with a diff for one that failed; exit status 1 when any fails.
    Test {
        /// The stream config with its `tests:`, YAML or JSON.
        file: PathBuf,
    },
    /// The coordinator and a worker in one process, with SQLite under the data directory: the zero-setup way
    /// to run Airtruct.
    Standalone(ServerArgs),
    /// The coordinator: the REST API, the store, and placement of streams on workers.
    Coordinator(ServerArgs),
    /// A worker: runs the streams the coordinator assigns it.
    Worker(WorkerArgs),
    /// Prints the REST API's OpenAPI 3.1 document (JSON), as `/api/v1/openapi.json` serves it.
    Openapi,
    /// Streams on a server: list, get, apply -f FILE, pause, resume, delete, versions, rollback.
    Streams {
        #[command(subcommand)]
        command: crate::remote::StreamsCommand,
        #[command(flatten)]
        target: crate::remote::Target,
    },
    /// Uploaded processors on a server: list, upload.
    Processors {
        #[command(subcommand)]
        command: crate::remote::ProcessorsCommand,
        #[command(flatten)]
        target: crate::remote::Target,
    },
    /// Prints a live sample of the messages at each step of a running stream (after the input, after each
    /// processor, at the output, and failures with their errors), as they come; editors and admins only.
    Tap {
        /// The stream's name or id.
        stream: String,
        /// Only this step: 0 the input, 1 to N the processors, N + 1 the output.
        #[arg(long)]
        step: Option<usize>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        target: crate::remote::Target,
    },
    /// Secrets on a server: list, set (the value from standard input).
    Secrets {
        #[command(subcommand)]
        command: crate::remote::SecretsCommand,
        #[command(flatten)]
        target: crate::remote::Target,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// A YAML file with any of: listen, data_dir, database_url, worker_token, secret_key_file, console_dir,
    /// tls_cert, tls_key, policy.
    #[arg(long, env = "AIRTRUCT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the API listens [default: 0.0.0.0:8080].
    #[arg(long, env = "AIRTRUCT_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Where the SQLite store, the secret key and the worker token live [default: ./data].
    #[arg(long, env = "AIRTRUCT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The store: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB` [default: sqlite://DATA_DIR/airtruct.db].
    #[arg(long, env = "AIRTRUCT_DATABASE_URL")]
    database_url: Option<String>,
    /// The password of the user `admin`, created on first start; a random one is printed when unset.
    #[arg(long, env = "AIRTRUCT_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// The token workers present [default: read from DATA_DIR/worker-token, created on first start].
    #[arg(long, env = "AIRTRUCT_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,
    /// The key that encrypts secrets, base64 of 32 bytes [default: read from the secret key file].
    #[arg(long, env = "AIRTRUCT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// The file holding the secret key, created on first start [default: DATA_DIR/secret.key].
    #[arg(long, env = "AIRTRUCT_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// The built web console (`ui/dist`), served at `/` [default: ui/dist].
    #[arg(long, env = "AIRTRUCT_CONSOLE_DIR")]
    console_dir: Option<PathBuf>,
    /// A folder streams may read and write files under (repeat for several); replaces the policy's `paths`
    /// [default: DATA_DIR/files].
    #[arg(long = "path-root", env = "AIRTRUCT_PATH_ROOTS", value_delimiter = ',')]
    path_roots: Vec<PathBuf>,
    /// Let streams open listening sockets of their own (`http_server` with `address`).
    #[arg(long, env = "AIRTRUCT_ALLOW_LISTENERS")]
    allow_listeners: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "AIRTRUCT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "AIRTRUCT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Args)]
struct WorkerArgs {
    /// A YAML file with any of: coordinator, coordinator_ca, worker_token, secret_key_file, name.
    #[arg(long, env = "AIRTRUCT_CONFIG")]
    config: Option<PathBuf>,
    /// The coordinator's URL (`http://coordinator:8080` or `https://...`); for several coordinators sharing one
    /// store, their URLs separated by commas (the worker moves to the next when one is out of reach).
    #[arg(long, env = "AIRTRUCT_COORDINATOR")]
    coordinator: Option<String>,
    /// Certificates (PEM) to trust for an `https://` coordinator, besides the system's: the coordinator's own
    /// certificate or its CA.
    #[arg(long, env = "AIRTRUCT_COORDINATOR_CA")]
    coordinator_ca: Option<PathBuf>,
    /// The worker token (the coordinator's DATA_DIR/worker-token).
    #[arg(long, env = "AIRTRUCT_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,
    /// The coordinator's secret key, base64, to decrypt the secrets of the streams this worker runs.
    #[arg(long, env = "AIRTRUCT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// A file holding the secret key (a copy of the coordinator's DATA_DIR/secret.key).
    #[arg(long, env = "AIRTRUCT_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// This worker's name in the API [default: the host name].
    #[arg(long, env = "AIRTRUCT_WORKER_NAME")]
    name: Option<String>,
    /// Take `/ingest/...` requests the coordinator forwards for this worker's `http_server` streams, on this
    /// address (`0.0.0.0:8081`) [default: none: requests cannot reach streams on this worker].
    #[arg(long, env = "AIRTRUCT_INGEST_LISTEN")]
    ingest_listen: Option<std::net::SocketAddr>,
    /// The URL the coordinator reaches the ingest listener at [default: http://LISTEN, or http://NAME:PORT when
    /// listening on all addresses].
    #[arg(long, env = "AIRTRUCT_INGEST_URL")]
    ingest_url: Option<String>,
}

fn server_settings(a: &ServerArgs) -> anyhow::Result<ServerSettings> {
    let file = FileSettings::read(a.config.as_deref())?;
    let data_dir = a
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = a
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("airtruct.db").display()));
    let mut policy = file
        .policy
        .unwrap_or_else(|| airtruct_runtime::policy::Policy::for_data_dir(&data_dir));
    if !a.path_roots.is_empty() {
        policy.paths = a.path_roots.clone();
    }
    policy.listeners |= a.allow_listeners;
    let tls = match (
        a.tls_cert.clone().or(file.tls_cert),
        a.tls_key.clone().or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (--tls-cert) and its key (--tls-key)"),
    };
    Ok(ServerSettings {
        tls,
        policy,
        listen: a
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "0.0.0.0:8080".parse().expect("a socket address")),
        secret_key_file: a
            .secret_key_file
            .clone()
            .or(file.secret_key_file)
            .unwrap_or_else(|| data_dir.join("secret.key")),
        database_url,
        admin_password: a.admin_password.clone(),
        worker_token: a.worker_token.clone().or(file.worker_token),
        secret_key: a.secret_key.clone(),
        console_dir: Some(
            a.console_dir
                .clone()
                .or(file.console_dir)
                .unwrap_or_else(|| PathBuf::from("ui/dist")),
        ),
        data_dir,
    })
}

fn worker_settings(a: &WorkerArgs) -> anyhow::Result<WorkerSettings> {
    let file = FileSettings::read(a.config.as_deref())?;
    Ok(WorkerSettings {
        coordinator: a
            .coordinator
            .clone()
            .or(file.coordinator)
            .context("no coordinator: set --coordinator URL (AIRTRUCT_COORDINATOR)")?,
        coordinator_ca: a.coordinator_ca.clone().or(file.coordinator_ca),
        worker_token: a
            .worker_token
            .clone()
            .or(file.worker_token)
            .context("no worker token: set --worker-token (AIRTRUCT_WORKER_TOKEN) to the coordinator's DATA_DIR/worker-token")?,
        secret_key: a.secret_key.clone(),
        secret_key_file: a.secret_key_file.clone().or(file.secret_key_file),
        name: a
            .name
            .clone()
            .or(file.name)
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
            .unwrap_or_else(|| "worker".into()),
        ingest_listen: a.ingest_listen,
        ingest_url: a.ingest_url.clone(),
    })
}

fn serve(g: &Global, command: &Command) -> anyhow::Result<ExitCode> {
    let engine = engine(g)?;
    if g.prewarm {
        airtruct_runtime::processors::prewarm(&engine).context("starting the prewarm thread")?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(async move {
        match command {
            Command::Standalone(a) => run_server(server_settings(a)?, engine, true).await,
            Command::Coordinator(a) => run_server(server_settings(a)?, engine, false).await,
            Command::Worker(a) => run_worker(worker_settings(a)?, engine).await,
            _ => unreachable!("not a server command"),
        }
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let result = match &cli.command {
        Command::Run { file } => run(&cli.global, file),
        Command::Validate { file } => validate(&cli.global, file),
        Command::Test { file } => test(&cli.global, file),
        Command::Openapi => {
            let doc = crate::api::openapi::document();
            println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Streams { command, target } => crate::remote::streams(target, command),
        Command::Processors { command, target } => crate::remote::processors(target, command),
        Command::Secrets { command, target } => crate::remote::secrets(target, command),
        Command::Tap {
            stream,
            step,
            count,
            target,
        } => crate::tap::tap(target, stream, *step, *count),
        command => serve(&cli.global, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(g: &Global) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(&g.log));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if g.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/airtruct/components` or `~/.cache/airtruct/components`.
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context(
            "no cache directory: set --cache-dir (AIRTRUCT_CACHE_DIR), HOME or XDG_CACHE_HOME",
        )?;
    Ok(base.join("airtruct/components"))
}

fn engine(g: &Global) -> anyhow::Result<Engine> {
    let cache_dir = match &g.cache_dir {
        Some(d) => d.clone(),
        None => default_cache_dir()?,
    };
    Engine::new(EngineConfig {
        cache_dir: Some(cache_dir),
        max_memory_bytes: (g.max_processor_memory_mib.max(1) as usize) << 20,
        max_component_bytes: (g.max_component_mib.max(1) as usize) << 20,
        compile_timeout: g.compile_timeout,
        ..EngineConfig::default()
    })
    .context("starting the wasm engine")
}

fn read_config(file: &Path) -> anyhow::Result<Result<serde_json::Value, Vec<ValidationError>>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading \"{}\"", file.display()))?;
    Ok(parse_text(&text, |name| std::env::var(name).ok()))
}

fn print_errors(file: &Path, errors: &[ValidationError]) {
    eprintln!("{}: {} problem(s)", file.display(), errors.len());
    for e in errors {
        eprintln!("  {e}");
    }
}

fn validate(g: &Global, file: &Path) -> anyhow::Result<ExitCode> {
    let engine = engine(g)?;
    let checked = read_config(file)?.and_then(|v| {
        validate_stream(
            airtruct_connectors::registry(),
            &engine,
            &v,
            &Uploaded::default(),
        )
        .map(|_| ())
    });
    match checked {
        Ok(()) => {
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_errors(file, &errors);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn test(g: &Global, file: &Path) -> anyhow::Result<ExitCode> {
    let engine = engine(g)?;
    let results = read_config(file)?.and_then(|v| {
        crate::stream_tests::run_cases(&engine, &v, &Uploaded::default(), None, None)
    });
    match results {
        Ok(results) if results.is_empty() => {
            eprintln!(
                "{}: no test cases: add `tests:` (see docs/testing.md)",
                file.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Ok(results) => {
            print!("{}", crate::stream_tests::report(&results));
            Ok(if results.iter().all(|r| r.passed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(errors) => {
            print_errors(file, &errors);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run(g: &Global, file: &Path) -> anyhow::Result<ExitCode> {
    let engine = engine(g)?;
    let plan = match read_config(file)?.and_then(|v| {
        validate_stream(
            airtruct_connectors::registry(),
            &engine,
            &v,
            &Uploaded::default(),
        )
    }) {
        Ok(plan) => plan,
        Err(errors) => {
            print_errors(file, &errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let code = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(StreamMetrics::default());
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!(
                        "interrupted: draining what is in flight (Ctrl-C again to quit now)"
                    );
                    shutdown.cancel();
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprintln!("quitting without draining");
                        std::process::exit(130);
                    }
                }
            });
        }
        #[cfg(unix)]
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                if let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    term.recv().await;
                    tracing::info!("terminated: draining what is in flight");
                    shutdown.cancel();
                }
            });
        }
        let cx = BuildContext::local(engine, metrics.clone(), shutdown);
        let stream = build_stream(plan, cx).await?;
        let exit = run_stream(stream).await;
        let m = metrics.snapshot();
        let summary = format!(
            "received {}, sent {}, filtered {}, failed {}, dropped {}",
            m.received, m.sent, m.filtered, m.failed, m.dropped
        );
        match exit {
            Ok(StreamExit::Completed) => {
                tracing::info!("stream completed: {summary}");
                Ok(ExitCode::SUCCESS)
            }
            Ok(StreamExit::Stopped) => {
                tracing::info!("stream stopped: {summary}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                tracing::error!("stream failed: {e} ({summary})");
                Ok(ExitCode::FAILURE)
            }
        }
    });
    // A read of an interactive stdin cannot be cancelled: do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
