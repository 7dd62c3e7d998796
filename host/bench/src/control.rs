//! Control-plane timings with real processes: a coordinator and two workers (the `airtruct` binary next to this
//! one: `cargo build --release -p airtruct` first). Failover is the time from `kill -9` of the worker that runs a
//! stream to the other worker reporting it running; pause is the time from the API call to the worker reporting
//! it stopped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "wt_bench";
pub(crate) const PASSWORD: &str = "bench-password";

pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `airtruct` binary: `AIRTRUCT_BIN`, else the one next to this bench.
pub(crate) fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("AIRTRUCT_BIN") {
        return PathBuf::from(bin);
    }
    let me = std::env::current_exe().expect("the bench's own path");
    let bin = me.with_file_name("airtruct");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p airtruct` first",
        bin.display()
    );
    bin
}

pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Proc {
    Proc(
        Command::new(binary())
            .current_dir(dir)
            .args(args)
            .env("AIRTRUCT_ADMIN_PASSWORD", PASSWORD)
            .env("AIRTRUCT_WORKER_TOKEN", TOKEN)
            .env("AIRTRUCT_LOG", "warn,airtruct=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting airtruct"),
    )
}

/// Starts `airtruct standalone` with its data in `dir/data_name` and `extra` flags; the process and its API's base
/// URL.
pub(crate) fn standalone(dir: &Path, data_name: &str, extra: &[&str]) -> (Proc, String) {
    let data = dir.join(data_name);
    let mut args = vec![
        "standalone",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("a UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    let mut p = spawn(dir, &args);
    let base = api_base(&mut p);
    (p, base)
}

/// The processed answer to the first `POST url` a stream's `http_server` input takes: tried every 100 ms until the
/// stream runs (two minutes at most).
pub(crate) async fn first_answer(http: &reqwest::Client, url: &str, body: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.post(url).body(body.to_string()).send().await
            && r.status() == 200
        {
            return r.text().await.unwrap_or_default();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{url} took no request in two minutes: its stream did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the coordinator and reads its address from its log.
fn coordinator(dir: &Path) -> (Proc, String) {
    let data = dir.join("data");
    let mut p = spawn(
        dir,
        &[
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let base = api_base(&mut p);
    (p, base)
}

/// The API's base URL, from the server's "API at" log line; the rest of its log is drained.
pub(crate) fn api_base(p: &mut Proc) -> String {
    let stderr = p.0.stderr.take().expect("the server's log");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if let Some(i) = line.find("API at http://") {
            let url = &line[i + 7..];
            break url[..url.find("/api/v1").unwrap()].to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    base
}

fn worker(dir: &Path, base: &str, name: &str) -> Proc {
    spawn(dir, &["worker", "--coordinator", base, "--name", name])
}

pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
}

impl Api {
    /// Logs in as `admin`.
    pub(crate) async fn login(base: &str) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            base: base.to_string(),
            token: login["token"].as_str().expect("login").to_string(),
            http,
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn running_on(&self, id: &str) -> Vec<String> {
        let s = self
            .call(reqwest::Method::GET, &format!("/api/v1/streams/{id}"), None)
            .await;
        s["replicas"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|r| r["state"] == "running")
                    .map(|r| r["worker_name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn replicas(&self, id: &str) -> usize {
        let s = self
            .call(reqwest::Method::GET, &format!("/api/v1/streams/{id}"), None)
            .await;
        s["replicas"].as_array().map_or(usize::MAX, Vec::len)
    }
}

async fn until<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn summary(runs: &[Duration]) -> String {
    let mut sorted = runs.to_vec();
    sorted.sort();
    let ms: Vec<String> = runs
        .iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect();
    format!(
        "| {} | {:.2} s | {:.2} s |",
        ms.join(", "),
        sorted[sorted.len() / 2].as_secs_f64(),
        sorted[sorted.len() - 1].as_secs_f64()
    )
}

pub fn control() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir =
            std::env::temp_dir().join(format!("airtruct-bench-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_c, base) = coordinator(&dir);
        let mut workers = vec![
            ("w1".to_string(), worker(&dir, &base, "w1")),
            ("w2".to_string(), worker(&dir, &base, "w2")),
        ];
        let api = Api::login(&base).await;
        let config = json!({
            "input": {"generate": {"interval": "10ms"}},
            "pipeline": {"processors": [{"mapping": ".x = 1"}]},
            "output": {"drop": {}}
        });
        let s = api
            .call(
                reqwest::Method::POST,
                "/api/v1/streams",
                Some(json!({"name": "bench", "config": config})),
            )
            .await;
        let id = s["id"].as_str().expect("stream created").to_string();
        until(|| async { api.running_on(&id).await.len() == 1 }).await;

        let mut failovers = Vec::new();
        for _ in 0..3 {
            let on = api.running_on(&id).await[0].clone();
            let i = workers.iter().position(|(n, _)| *n == on).unwrap();
            let killed = Instant::now();
            workers.remove(i);
            until(|| async {
                let now = api.running_on(&id).await;
                now.len() == 1 && now[0] != on
            })
            .await;
            failovers.push(killed.elapsed());
            workers.push((on.clone(), worker(&dir, &api.base, &on)));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }

        let mut pauses = Vec::new();
        let mut resumes = Vec::new();
        for _ in 0..5 {
            let status = format!("/api/v1/streams/{id}/status");
            let t = Instant::now();
            api.call(
                reqwest::Method::POST,
                &status,
                Some(json!({"status": "paused"})),
            )
            .await;
            until(|| async { api.replicas(&id).await == 0 }).await;
            pauses.push(t.elapsed());
            let t = Instant::now();
            api.call(
                reqwest::Method::POST,
                &status,
                Some(json!({"status": "active"})),
            )
            .await;
            until(|| async { api.running_on(&id).await.len() == 1 }).await;
            resumes.push(t.elapsed());
        }
        println!("\n## Control plane: coordinator and two worker processes (lease 5 s)\n");
        println!("| measure | runs | median | worst |");
        println!("|---|---|---|---|");
        println!(
            "| failover after kill -9 (goal 10 s) {}",
            summary(&failovers)
        );
        println!(
            "| pause to stopped on the worker (goal 1 s) {}",
            summary(&pauses)
        );
        println!("| resume to running {}", summary(&resumes));
        drop(workers);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
