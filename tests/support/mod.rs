//! Helpers for end-to-end tests that start real `airtruct` processes and talk to them over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const WAIT: Duration = Duration::from_secs(60);
pub const WORKER_TOKEN: &str = "wt_test_token";
/// base64 of 32 bytes: the coordinator and the workers share it to seal and open secrets.
pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The `airtruct` binary with a shared component cache and plain logs.
pub fn airtruct(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airtruct"));
    cmd.current_dir(dir)
        .env(
            "AIRTRUCT_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env("AIRTRUCT_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("AIRTRUCT_ADMIN_PASSWORD")
        .env_remove("AIRTRUCT_WORKER_TOKEN")
        .env_remove("AIRTRUCT_SECRET_KEY");
    cmd
}

/// A running process whose log lines are collected; killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting airtruct");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let tag = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("AIRTRUCT_TEST_ECHO").is_some() {
                    eprintln!("[{tag}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before logging {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "{} did not log {needle:?} in {timeout:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The API's base URL, from the "airtruct is up" line.
    pub fn wait_for_api(&mut self) -> String {
        let line = self.wait_for_line("API at http", Duration::from_secs(120));
        let from = line.find("API at ").unwrap() + "API at ".len();
        let url = &line[from..];
        let end = url.find("/api/v1").unwrap();
        url[..end].to_string()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `airtruct standalone` on a free port with its data in `dir/data`; streams may use files under `dir`
/// (the operator's `--path-root`), the data folder excepted.
pub fn standalone(dir: &Path) -> (Proc, String) {
    let mut cmd = airtruct(dir);
    cmd.args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--path-root")
        .arg(dir)
        .env("AIRTRUCT_ADMIN_PASSWORD", ADMIN_PASSWORD);
    let mut p = Proc::spawn("standalone", cmd);
    let base = p.wait_for_api();
    (p, base)
}

/// An HTTP client for the API, with a token once logged in.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    /// A client that sends `token`.
    pub fn with_token(base: &str, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..Self::new(base)
        }
    }

    /// Logs in as admin.
    pub async fn login(base: &str) -> Self {
        let mut api = Self::new(base);
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        api.token = Some(body["token"].as_str().unwrap().to_string());
        api
    }

    /// Calls the API; answers the status and the body as JSON (or as a string when it is not JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("calling the API");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }
}

/// A stream as the API shows it (`GET /api/v1/streams/{id}`): its status, counters and replicas.
pub async fn stream(api: &Api, id: &str) -> Value {
    api.get(&format!("/api/v1/streams/{id}")).await
}

/// Waits up to `timeout` for a stream to reach `status`; answers the stream as the API shows it then.
pub async fn wait_status(api: &Api, id: &str, status: &str, timeout: Duration) -> Value {
    eventually(&format!("stream {id} to be {status}"), timeout, || async {
        let s = stream(api, id).await;
        (s["status"] == status).then_some(s)
    })
    .await
}

/// Uploads a processor component as `name` (with the description "test upload"); answers the status and the
/// body (`null` when it is not JSON).
pub async fn upload(api: &Api, name: &str, bytes: &[u8]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/processors?name={name}&description=test%20upload",
            api.base
        ))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `check` every 50 ms until it answers `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of a file (none when it does not exist yet).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A random hex string, for names (databases, topics, tables, slots) that must not collide between runs.
pub fn suffix() -> String {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).unwrap();
    hex::encode(id)
}

/// Runs `sql` with `psql` on the database at `url` and answers its output (unaligned, without headers); panics
/// with psql's message when it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-Atqc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The PostgreSQL server the tests use (`AIRTRUCT_TEST_POSTGRES`), as a URL without a database.
pub fn postgres_server() -> String {
    std::env::var("AIRTRUCT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A throwaway PostgreSQL database, dropped with the guard.
pub struct PgDb(pub String);

impl PgDb {
    pub fn new() -> Self {
        let name = format!("airtruct_e2e_{}", suffix());
        psql(
            &format!("{}/postgres", postgres_server()),
            &format!("CREATE DATABASE {name}"),
        );
        Self(name)
    }

    pub fn url(&self) -> String {
        format!("{}/{}", postgres_server(), self.0)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                &format!("{}/postgres", postgres_server()),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ])
            .output();
    }
}

pub fn coordinator(dir: &Path, db: &PgDb) -> (Proc, String) {
    let mut cmd = airtruct(dir);
    cmd.args(["coordinator", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--path-root")
        .arg(dir)
        .args(["--database-url", &db.url()])
        .env("AIRTRUCT_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("AIRTRUCT_WORKER_TOKEN", WORKER_TOKEN)
        .env("AIRTRUCT_SECRET_KEY", SECRET_KEY);
    let mut p = Proc::spawn("coordinator", cmd);
    let base = p.wait_for_api();
    (p, base)
}

pub fn worker(dir: &Path, base: &str, name: &str) -> Proc {
    worker_with(dir, base, name, &[])
}

/// A worker with more flags (`--ingest-listen 127.0.0.1:0`), once it registered.
pub fn worker_with(dir: &Path, base: &str, name: &str, flags: &[&str]) -> Proc {
    let mut cmd = airtruct(dir);
    cmd.args(["worker", "--coordinator", base, "--name", name])
        .args(flags)
        .env("AIRTRUCT_WORKER_TOKEN", WORKER_TOKEN)
        .env("AIRTRUCT_SECRET_KEY", SECRET_KEY);
    let mut p = Proc::spawn(name, cmd);
    p.wait_for_line("registered with the coordinator", WAIT);
    p
}

/// Runs SQL on this machine's MariaDB (database `test`, as root); answers its output, tab-separated.
pub fn mariadb(sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-N",
            "-B",
            "test",
            "-e",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
