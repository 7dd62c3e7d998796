//! The commands against a server's API (`airtruct streams|processors|secrets ...`), so stream configs can live in
//! git and be applied from CI: the server's URL and an API token come from flags or the environment, answers print
//! as tables (or the API's JSON with `--json`), and an API error prints its message and every detail, exit status 1.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

/// Which server, as whom.
#[derive(Args)]
pub struct Target {
    /// The server's base URL.
    #[arg(
        long,
        env = "AIRTRUCT_SERVER",
        default_value = "http://localhost:8080",
        global = true
    )]
    pub(crate) server: String,
    /// An API token (made on the console's Account page or with POST /api/v1/tokens).
    #[arg(long, env = "AIRTRUCT_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub enum StreamsCommand {
    /// Every stream: name, status, version, counters and id.
    List,
    /// A stream's config as YAML, by name or id (`--json`: the whole stream).
    Get { stream: String },
    /// Creates a stream from a config file, or saves the file as its next version. The stream's name is the
    /// file's name without its extension unless --name gives one. A file that matches what is saved makes no
    /// new version.
    Apply {
        /// The stream config, YAML or JSON, as `airtruct run` takes it.
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// The stream's name [default: the file's stem].
        #[arg(long)]
        name: Option<String>,
        /// Save it paused (anything is saved) instead of active (the config must validate).
        #[arg(long)]
        paused: bool,
    },
    /// Stops a stream on its workers; it keeps its config and versions.
    Pause { stream: String },
    /// Runs a paused, completed or failed stream again.
    Resume { stream: String },
    /// Deletes a stream and its versions.
    Delete { stream: String },
    /// Every saved version of a stream, newest first.
    Versions { stream: String },
    /// Saves an earlier version's config as the next version.
    Rollback {
        stream: String,
        /// The version to go back to.
        version: i64,
    },
}

#[derive(Subcommand)]
pub enum ProcessorsCommand {
    /// Every uploaded processor, with its latest version.
    List,
    /// Uploads a processor component (`.wasm`); an existing name gets a new version.
    Upload {
        /// The component file.
        file: PathBuf,
        /// The processor's name (`a-z`, `0-9`, `-`, `_`).
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Every secret's name and when it was set (never a value).
    List,
    /// Sets a secret to what standard input holds (one trailing newline dropped), so the value never appears in
    /// a command line: `printf %s "$PASSWORD" | airtruct secrets set db-password`.
    Set { name: String },
}

/// A client for one server.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Api {
    pub(crate) fn new(t: &Target) -> anyhow::Result<Self> {
        let token = t.token.clone().context(
            "no API token: give --token or set AIRTRUCT_TOKEN (make one on the console's Account page)",
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("making the HTTP client")?;
        Ok(Self {
            http,
            base: t.server.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request; the answer's JSON (null when empty), or the API's error with its details.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            let mut msg = body["error"]
                .as_str()
                .map_or_else(|| format!("{status} {body}"), |e| format!("{e} ({status})"));
            for d in body["details"].as_array().into_iter().flatten() {
                msg.push_str(&format!(
                    "\n  {}: {}",
                    d["path"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                ));
            }
            bail!(msg);
        }
        Ok((status, body))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.call(Method::GET, path, None).await?.1)
    }

    /// The stream with this id, or else with this name.
    async fn stream(&self, which: &str) -> anyhow::Result<Option<Value>> {
        let all = self.get("/api/v1/streams").await?;
        let list = all.as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .find(|s| s["id"] == which)
            .or_else(|| list.iter().find(|s| s["name"] == which))
            .cloned())
    }

    pub(crate) async fn stream_id(&self, which: &str) -> anyhow::Result<(String, String)> {
        let s = self
            .stream(which)
            .await?
            .with_context(|| format!("no stream named \"{which}\" (nor with that id)"))?;
        Ok((str_of(&s["id"]), str_of(&s["name"])))
    }
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A secret's name as one path segment, checked locally against the server's rule first: a name like `..` would
/// otherwise change the path the value is sent to.
fn secret_segment(name: &str) -> anyhow::Result<&str> {
    crate::api::error::SECRET_NAME
        .check(name)
        .map_err(|e| anyhow::anyhow!("{}: \"{name}\"", e.body.error))?;
    Ok(name)
}

fn time_of(ms: &Value) -> String {
    ms.as_u64().map_or_else(String::new, |ms| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    })
}

/// Prints rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// A list from the API: its JSON with `--json`, else a table of one row per item.
async fn list(
    api: &Api,
    t: &Target,
    path: &str,
    header: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    let all = api.get(path).await?;
    if t.json {
        print_json(&all);
    } else {
        table(
            header,
            all.as_array().into_iter().flatten().map(row).collect(),
        );
    }
    Ok(())
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

/// Runs one API command on a small runtime of its own.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?
        .block_on(f)?;
    Ok(ExitCode::SUCCESS)
}

pub fn streams(t: &Target, cmd: &StreamsCommand) -> anyhow::Result<ExitCode> {
    let api = Api::new(t)?;
    block_on(async move {
        match cmd {
            StreamsCommand::List => {
                list(
                    &api,
                    t,
                    "/api/v1/streams",
                    &[
                        "NAME", "STATUS", "VERSION", "RECEIVED", "SENT", "FAILED", "ID",
                    ],
                    |s| {
                        let status = match s["waiting"].as_str() {
                            Some(_) => format!("{} (waiting)", str_of(&s["status"])),
                            None => str_of(&s["status"]),
                        };
                        vec![
                            str_of(&s["name"]),
                            status,
                            str_of(&s["version"]),
                            str_of(&s["received"]),
                            str_of(&s["sent"]),
                            str_of(&s["failed"]),
                            str_of(&s["id"]),
                        ]
                    },
                )
                .await?;
            }
            StreamsCommand::Get { stream } => {
                let (id, _) = api.stream_id(stream).await?;
                let s = api.get(&format!("/api/v1/streams/{id}")).await?;
                if t.json {
                    print_json(&s);
                } else {
                    print!(
                        "{}",
                        serde_yaml::to_string(&s["config"]).context("writing YAML")?
                    );
                }
            }
            StreamsCommand::Apply { file, name, paused } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let name = match name {
                    Some(n) => n.clone(),
                    None => file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .with_context(|| {
                            format!("{} has no name to use: give --name", file.display())
                        })?
                        .to_string(),
                };
                // Read as `airtruct run` reads it: `${VAR}` from this environment (`${secret:NAME}` is left for
                // the server), so the same file runs locally and applies from CI.
                let config = airtruct_model::parse_text(&text, |v| std::env::var(v).ok()).map_err(
                    |errors| {
                        let lines: Vec<String> =
                            errors.iter().map(|e| format!("\n  {e}")).collect();
                        anyhow::anyhow!(
                            "{}: {} problem(s){}",
                            file.display(),
                            errors.len(),
                            lines.concat()
                        )
                    },
                )?;
                let body = json!({
                    "name": name,
                    "status": if *paused { "paused" } else { "active" },
                    "config": config,
                });
                let (verb, s) = match api.stream(&name).await?.filter(|s| s["name"] == *name) {
                    None => {
                        let (_, s) = api
                            .call(Method::POST, "/api/v1/streams", Some(body))
                            .await?;
                        ("created", s)
                    }
                    Some(old) => {
                        let id = str_of(&old["id"]);
                        let (_, s) = api
                            .call(Method::PUT, &format!("/api/v1/streams/{id}"), Some(body))
                            .await?;
                        let verb = if s["version"] == old["version"] {
                            "unchanged"
                        } else {
                            "updated"
                        };
                        (verb, s)
                    }
                };
                if t.json {
                    print_json(&s);
                } else {
                    println!(
                        "{name} {verb}: version {}, {} ({})",
                        str_of(&s["version"]),
                        str_of(&s["status"]),
                        str_of(&s["id"])
                    );
                }
            }
            StreamsCommand::Pause { stream } | StreamsCommand::Resume { stream } => {
                let status = if matches!(cmd, StreamsCommand::Pause { .. }) {
                    "paused"
                } else {
                    "active"
                };
                let (id, name) = api.stream_id(stream).await?;
                let (_, s) = api
                    .call(
                        Method::POST,
                        &format!("/api/v1/streams/{id}/status"),
                        Some(json!({"status": status})),
                    )
                    .await?;
                if t.json {
                    print_json(&s);
                } else {
                    println!("{name} {}", str_of(&s["status"]));
                }
            }
            StreamsCommand::Delete { stream } => {
                let (id, name) = api.stream_id(stream).await?;
                api.call(Method::DELETE, &format!("/api/v1/streams/{id}"), None)
                    .await?;
                if !t.json {
                    println!("{name} deleted");
                }
            }
            StreamsCommand::Versions { stream } => {
                let (id, _) = api.stream_id(stream).await?;
                list(
                    &api,
                    t,
                    &format!("/api/v1/streams/{id}/versions"),
                    &["VERSION", "STATUS", "SAVED BY", "SAVED AT"],
                    |v| {
                        vec![
                            str_of(&v["version"]),
                            str_of(&v["status"]),
                            str_of(&v["saved_by"]),
                            time_of(&v["created_at"]),
                        ]
                    },
                )
                .await?;
            }
            StreamsCommand::Rollback { stream, version } => {
                let (id, name) = api.stream_id(stream).await?;
                let (_, s) = api
                    .call(
                        Method::POST,
                        &format!("/api/v1/streams/{id}/versions/{version}/rollback"),
                        Some(json!({})),
                    )
                    .await?;
                if t.json {
                    print_json(&s);
                } else {
                    println!(
                        "{name} rolled back to version {version}'s config: now version {}, {}",
                        str_of(&s["version"]),
                        str_of(&s["status"])
                    );
                }
            }
        }
        Ok(())
    })
}

pub fn processors(t: &Target, cmd: &ProcessorsCommand) -> anyhow::Result<ExitCode> {
    let api = Api::new(t)?;
    block_on(async move {
        match cmd {
            ProcessorsCommand::List => {
                list(
                    &api,
                    t,
                    "/api/v1/processors",
                    &["NAME", "VERSION", "BYTES", "UPLOADED AT", "DESCRIPTION"],
                    |p| {
                        vec![
                            str_of(&p["name"]),
                            str_of(&p["version"]),
                            str_of(&p["size"]),
                            time_of(&p["created_at"]),
                            str_of(&p["description"]),
                        ]
                    },
                )
                .await?;
            }
            ProcessorsCommand::Upload {
                file,
                name,
                description,
            } => {
                let bytes =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let mut query = vec![("name", name.as_str())];
                if let Some(d) = description {
                    query.push(("description", d.as_str()));
                }
                let req = api
                    .http
                    .post(format!("{}/api/v1/processors", api.base))
                    .query(&query)
                    .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes);
                let (_, p) = api.send(req).await?;
                if t.json {
                    print_json(&p);
                } else {
                    println!(
                        "{} uploaded: version {} ({} bytes, sha256 {})",
                        str_of(&p["name"]),
                        str_of(&p["version"]),
                        str_of(&p["size"]),
                        str_of(&p["sha256"])
                    );
                }
            }
        }
        Ok(())
    })
}

pub fn secrets(t: &Target, cmd: &SecretsCommand) -> anyhow::Result<ExitCode> {
    let api = Api::new(t)?;
    block_on(async move {
        match cmd {
            SecretsCommand::List => {
                list(
                    &api,
                    t,
                    "/api/v1/secrets",
                    &["NAME", "SET AT", "REFERENCE"],
                    |s| {
                        vec![
                            str_of(&s["name"]),
                            time_of(&s["updated_at"]),
                            str_of(&s["reference"]),
                        ]
                    },
                )
                .await?;
            }
            SecretsCommand::Set { name } => {
                let mut value = String::new();
                std::io::stdin()
                    .read_to_string(&mut value)
                    .context("reading the secret's value from standard input")?;
                if value.ends_with('\n') {
                    value.pop();
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
                if value.is_empty() {
                    bail!("standard input held no value for secret \"{name}\"");
                }
                let (status, s) = api
                    .call(
                        Method::PUT,
                        &format!("/api/v1/secrets/{}", secret_segment(name)?),
                        Some(json!({"value": value})),
                    )
                    .await?;
                if t.json {
                    print_json(&s);
                } else {
                    let verb = if status == 201 { "created" } else { "replaced" };
                    println!(
                        "secret {name} {verb}: configs use {}",
                        str_of(&s["reference"])
                    );
                }
            }
        }
        Ok(())
    })
}
