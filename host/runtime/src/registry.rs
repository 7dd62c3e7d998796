//! Every input, output and processor kind, in one place: their config types, their JSON Schemas (for the
//! console and the API catalogue) and how each is built from a `kind: {options}` entry.

use std::collections::HashMap;
use std::sync::Arc;

use airtruct_engine::{Engine, Limits, LoadedComponent};
use airtruct_model::{Component, ValidationError, from_value, join_path};
use schemars::{JsonSchema, schema_for};
use serde::Deserialize;
use serde_json::Value;

use crate::buffers::memory::MemoryBufferConfig;
use crate::buffers::sqlite::SqliteBufferConfig;
use crate::buffers::window::WindowConfig;
use crate::chain::ProcessorSpec;
use crate::inputs::{
    file::FileInputConfig, generate::GenerateInputConfig, http_client::HttpClientInputConfig,
    http_server::HttpServerInputConfig, kafka::KafkaInputConfig,
    postgres_cdc::PostgresCdcInputConfig, sql_select::SqlSelectInputConfig,
    stdin::StdinInputConfig,
};
use crate::outputs::{
    drop::{DropOutput, DropOutputConfig},
    file::FileOutputConfig,
    http_client::HttpClientOutputConfig,
    kafka::KafkaOutputConfig,
    sql_insert::SqlInsertOutputConfig,
    stdout::StdoutOutputConfig,
    sync_response::{SyncResponseOutput, SyncResponseOutputConfig},
};
use crate::{Error, Input, Output};

/// What part of a stream a kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Input,
    Output,
    Processor,
    Buffer,
}

/// One kind in the catalogue.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct KindDoc {
    /// The key used in a stream config (`file`, `mapping`).
    pub kind: String,
    pub role: Role,
    /// What it does.
    pub description: String,
    /// JSON Schema of its options.
    pub config_schema: Value,
}

/// Input kinds with their descriptions and options.
pub fn inputs() -> Vec<KindDoc> {
    vec![
        doc::<FileInputConfig>(
            "file",
            Role::Input,
            "Reads a file, one message per line (raw or JSON lines)",
        ),
        doc::<StdinInputConfig>(
            "stdin",
            Role::Input,
            "Reads standard input, one message per line",
        ),
        doc::<GenerateInputConfig>(
            "generate",
            Role::Input,
            "Makes messages from a template with a sequence number",
        ),
        doc::<HttpServerInputConfig>(
            "http_server",
            Role::Input,
            "Takes HTTP requests at the coordinator's /ingest/{stream}/... as messages; the caller is answered once \
             its message is delivered (with the processed message, through a sync_response output)",
        ),
        doc::<HttpClientInputConfig>(
            "http_client",
            Role::Input,
            "Polls a URL on an interval: each response body is a message",
        ),
        doc::<KafkaInputConfig>(
            "kafka",
            Role::Input,
            "Consumes Kafka topics in a consumer group; offsets are committed only for messages the output \
             confirmed",
        ),
        doc::<PostgresCdcInputConfig>(
            "postgres_cdc",
            Role::Input,
            "Row changes (insert, update, delete) from a PostgreSQL logical replication slot; the slot advances \
             only past delivered changes",
        ),
        doc::<SqlSelectInputConfig>(
            "sql_select",
            Role::Input,
            "Reads rows of a PostgreSQL, MySQL/MariaDB or SQLite table once, or on an interval past a checkpoint \
             column; each row is a JSON message",
        ),
    ]
}

/// Output kinds with their descriptions and options.
pub fn outputs() -> Vec<KindDoc> {
    vec![
        doc::<FileOutputConfig>(
            "file",
            Role::Output,
            "Appends one line per message to a file",
        ),
        doc::<StdoutOutputConfig>(
            "stdout",
            Role::Output,
            "Writes one line per message to standard output",
        ),
        doc::<DropOutputConfig>("drop", Role::Output, "Confirms and discards every message"),
        doc::<HttpClientOutputConfig>(
            "http_client",
            Role::Output,
            "Sends each message as an HTTP request; 5xx and timeouts are retried, other 4xx fail the message",
        ),
        doc::<SyncResponseOutputConfig>(
            "sync_response",
            Role::Output,
            "Answers the HTTP caller of an http_server input with the processed message",
        ),
        doc::<KafkaOutputConfig>(
            "kafka",
            Role::Output,
            "Produces to a Kafka topic; a batch is confirmed once the brokers acknowledged every message",
        ),
        doc::<SqlInsertOutputConfig>(
            "sql_insert",
            Role::Output,
            "Inserts rows into a PostgreSQL, MySQL/MariaDB or SQLite table, one multi-row insert in one \
             transaction per batch, values from a VRL args_mapping",
        ),
    ]
}

/// Buffer kinds with their descriptions and options.
pub fn buffers() -> Vec<KindDoc> {
    vec![
        doc::<MemoryBufferConfig>(
            "memory",
            Role::Buffer,
            "A queue in memory bounded by bytes: the input waits when it is full, or with spillover what does not \
             fit goes to disk segments, read back in order",
        ),
        doc::<SqliteBufferConfig>(
            "sqlite",
            Role::Buffer,
            "A persistent queue in a SQLite file: the input is acknowledged once a message is on disk, and a \
             stream survives kill -9 with nothing lost",
        ),
        doc::<WindowConfig>(
            "system_window",
            Role::Buffer,
            "Groups messages into tumbling, hopping or sliding windows of event time and hands each closed window \
             to the processors as one batch (use the aggregate processor to count or sum per key)",
        ),
    ]
}

/// A buffer between the input and the processors.
#[derive(Debug, Clone)]
pub enum BufferConfig {
    Memory(MemoryBufferConfig),
    Sqlite(SqliteBufferConfig),
    Window(Box<WindowConfig>, Option<OutputConfig>),
}

impl BufferConfig {
    pub fn parse(c: &Component) -> Result<Self, Vec<ValidationError>> {
        match c.kind.as_str() {
            "memory" => Ok(Self::Memory(options(c).map_err(|e| vec![e])?)),
            "sqlite" => Ok(Self::Sqlite(options(c).map_err(|e| vec![e])?)),
            "system_window" => {
                let w: WindowConfig = options(c).map_err(|e| vec![e])?;
                let path = c.options_path();
                let mut errors: Vec<ValidationError> = w
                    .problems()
                    .into_iter()
                    .map(|(field, message)| ValidationError::new(join_path(&path, field), message))
                    .collect();
                let late = match &w.late_output {
                    Some(v) => Component::parse(&join_path(&path, "late_output"), v)
                        .and_then(|c| OutputConfig::parse(&c))
                        .map_err(|e| errors.push(e))
                        .ok(),
                    None => None,
                };
                if errors.is_empty() {
                    Ok(Self::Window(Box::new(w), late))
                } else {
                    Err(errors)
                }
            }
            _ => Err(vec![unknown(c, buffers(), "buffer")]),
        }
    }

    /// Whether the buffer acknowledges the input before the output confirmed (`sqlite`, `memory` with
    /// `acknowledge: buffered`).
    pub fn acknowledges_early(&self) -> bool {
        match self {
            Self::Sqlite(_) => true,
            Self::Memory(m) => m.acknowledge == crate::buffers::memory::AckMode::Buffered,
            Self::Window(..) => false,
        }
    }

    /// Whether each batch the buffer gives must reach the processors whole (a window), rather than being
    /// batched again by `pipeline.batch`.
    pub fn keeps_batches(&self) -> bool {
        matches!(self, Self::Window(..))
    }

    /// Wraps the input: the buffer reads it and the stream reads the buffer.
    pub async fn wrap(
        &self,
        input: Box<dyn Input>,
        metrics: Arc<crate::StreamMetrics>,
        engine: &Engine,
    ) -> Result<Box<dyn Input>, Error> {
        match self {
            Self::Memory(c) => c.wrap(input, metrics).await,
            Self::Sqlite(c) => c.wrap(input, metrics).await,
            Self::Window(c, late) => {
                let late = match late {
                    Some(o) => Some(o.build(engine).await?),
                    None => None,
                };
                c.wrap(input, late, metrics).await
            }
        }
    }
}

/// Processor kinds: the built-in components (described by the components themselves) and `wasm`.
pub fn processors(engine: &Engine) -> Vec<KindDoc> {
    let mut docs: Vec<KindDoc> = airtruct_builtins::BUILTINS
        .iter()
        .map(|b| match builtin_component(engine, b.kind) {
            Ok(c) => KindDoc {
                kind: b.kind.to_string(),
                role: Role::Processor,
                description: c.info().description.clone(),
                config_schema: serde_json::from_str(&c.info().config_schema).unwrap_or(Value::Null),
            },
            Err(e) => KindDoc {
                kind: b.kind.to_string(),
                role: Role::Processor,
                description: format!("unavailable: {}", e.message),
                config_schema: Value::Null,
            },
        })
        .collect();
    docs.push(doc::<WasmProcessorConfig>(
        "wasm",
        Role::Processor,
        "Runs a processor component of your own",
    ));
    docs
}

fn doc<T: JsonSchema>(kind: &str, role: Role, description: &str) -> KindDoc {
    KindDoc {
        kind: kind.into(),
        role,
        description: description.into(),
        config_schema: serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null),
    }
}

fn unknown(c: &Component, docs: Vec<KindDoc>, role: &str) -> ValidationError {
    let known: Vec<String> = docs.into_iter().map(|d| d.kind).collect();
    ValidationError::new(
        &c.path,
        format!(
            "unknown {role} kind \"{}\", expected one of {}",
            c.kind,
            known.join(", ")
        ),
    )
}

/// Reads options and checks what serde cannot; the first problem is reported at its field.
fn checked<T: for<'de> Deserialize<'de>>(
    c: &Component,
    problems: fn(&T) -> Vec<(&'static str, String)>,
) -> Result<T, ValidationError> {
    let o: T = options(c)?;
    match problems(&o).into_iter().next() {
        Some((field, message)) => Err(ValidationError::new(
            join_path(&c.options_path(), field),
            message,
        )),
        None => Ok(o),
    }
}

fn options<T: for<'de> Deserialize<'de>>(c: &Component) -> Result<T, ValidationError> {
    // `kind: ~` and `kind: {}` both mean "all defaults".
    let value = if c.options.is_null() {
        Value::Object(Default::default())
    } else {
        c.options.clone()
    };
    from_value(&c.options_path(), &value)
}

/// A parsed input config, ready to build.
pub enum InputConfig {
    File(FileInputConfig),
    Stdin(StdinInputConfig),
    Generate(GenerateInputConfig),
    HttpServer(HttpServerInputConfig),
    HttpClient(HttpClientInputConfig),
    Kafka(KafkaInputConfig),
    SqlSelect(SqlSelectInputConfig),
    PostgresCdc(PostgresCdcInputConfig),
}

impl InputConfig {
    /// Reads an input entry, checking its options.
    pub fn parse(c: &Component) -> Result<Self, ValidationError> {
        Ok(match c.kind.as_str() {
            "file" => Self::File(options(c)?),
            "stdin" => Self::Stdin(options(c)?),
            "generate" => Self::Generate(options(c)?),
            "http_server" => Self::HttpServer(checked(c, HttpServerInputConfig::problems)?),
            "http_client" => Self::HttpClient(options(c)?),
            "kafka" => Self::Kafka(checked(c, KafkaInputConfig::problems)?),
            "sql_select" => Self::SqlSelect(checked(c, SqlSelectInputConfig::problems)?),
            "postgres_cdc" => Self::PostgresCdc(checked(c, PostgresCdcInputConfig::problems)?),
            _ => return Err(unknown(c, inputs(), "input")),
        })
    }

    /// Builds the running input; `stream` is the id of the stream it serves, when a worker runs it.
    pub async fn build(&self, stream: Option<&str>) -> Result<Box<dyn Input>, Error> {
        Ok(match self {
            Self::File(c) => Box::new(c.build().await?),
            Self::Stdin(c) => Box::new(c.build()),
            Self::Generate(c) => Box::new(c.build()),
            Self::HttpServer(c) => Box::new(c.build(stream).await?),
            Self::HttpClient(c) => Box::new(c.build()?),
            Self::Kafka(c) => Box::new(c.build()?),
            Self::SqlSelect(c) => Box::new(c.build().await?),
            Self::PostgresCdc(c) => Box::new(c.build().await?),
        })
    }
}

/// A parsed output config, ready to build.
#[derive(Debug, Clone)]
pub enum OutputConfig {
    File(FileOutputConfig),
    Stdout(StdoutOutputConfig),
    Drop(DropOutputConfig),
    HttpClient(HttpClientOutputConfig),
    SyncResponse(SyncResponseOutputConfig),
    Kafka(KafkaOutputConfig),
    SqlInsert(SqlInsertOutputConfig),
}

impl OutputConfig {
    /// Reads an output entry, checking its options.
    pub fn parse(c: &Component) -> Result<Self, ValidationError> {
        Ok(match c.kind.as_str() {
            "file" => Self::File(options(c)?),
            "stdout" => Self::Stdout(options(c)?),
            "drop" => Self::Drop(options(c)?),
            "http_client" => Self::HttpClient(checked(c, HttpClientOutputConfig::problems)?),
            "kafka" => Self::Kafka(checked(c, KafkaOutputConfig::problems)?),
            "sql_insert" => Self::SqlInsert(checked(c, SqlInsertOutputConfig::problems)?),
            "sync_response" => Self::SyncResponse(options(c)?),
            _ => return Err(unknown(c, outputs(), "output")),
        })
    }

    /// Builds the running output.
    pub async fn build(&self, engine: &Engine) -> Result<Box<dyn Output>, Error> {
        Ok(match self {
            Self::File(c) => Box::new(c.build().await?),
            Self::Stdout(c) => Box::new(c.build()),
            Self::Drop(_) => Box::new(DropOutput),
            Self::HttpClient(c) => Box::new(c.build()?),
            Self::SyncResponse(_) => Box::new(SyncResponseOutput),
            Self::Kafka(c) => Box::new(c.build()?),
            Self::SqlInsert(c) => Box::new(c.build(engine).await?),
        })
    }
}

/// Runs a processor component of your own: one uploaded to the coordinator (`name`, `version`), or a `.wasm`
/// file (`path`, for `airtruct run`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WasmProcessorConfig {
    /// The name of an uploaded processor.
    #[serde(default)]
    pub name: Option<String>,
    /// Its version; when unset, saving the stream pins the latest.
    #[serde(default)]
    pub version: Option<i64>,
    /// Or the path of a component file (`.wasm`, built for wasm32-wasip2) on the machine that runs the stream.
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// The processor's own configuration, passed to its `init` as JSON.
    #[serde(default)]
    pub config: Option<Value>,
    /// Limits for this processor, each within what the operator allows; absent ones take the defaults.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Per-processor limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LimitsConfig {
    /// Memory cap of each instance, in MiB (default 256).
    pub memory_mib: Option<u32>,
    /// Time limit of one batch (default "5s").
    pub timeout: Option<airtruct_model::Duration>,
    /// Most output of one batch, in MiB (default 64).
    pub max_output_mib: Option<u32>,
}

impl LimitsConfig {
    fn resolve(&self, engine: &Engine, path: &str) -> Result<Limits, ValidationError> {
        let d = Limits::default();
        let memory_bytes = self
            .memory_mib
            .map_or(d.memory_bytes, |m| (m as usize) << 20);
        let max = engine.config().max_memory_bytes;
        if memory_bytes > max || memory_bytes == 0 {
            return Err(ValidationError::new(
                join_path(path, "memory_mib"),
                format!("must be between 1 and {} (the operator's limit)", max >> 20),
            ));
        }
        let timeout = self.timeout.map_or(d.timeout, Into::into);
        if timeout < std::time::Duration::from_millis(10)
            || timeout > std::time::Duration::from_secs(300)
        {
            return Err(ValidationError::new(
                join_path(path, "timeout"),
                "must be between 10ms and 5m",
            ));
        }
        let max_output_bytes = self
            .max_output_mib
            .map_or(d.max_output_bytes, |m| (m as usize) << 20);
        Ok(Limits {
            memory_bytes,
            timeout,
            max_output_bytes,
        })
    }
}

pub(crate) fn builtin_component(
    engine: &Engine,
    kind: &str,
) -> Result<Arc<LoadedComponent>, ValidationError> {
    let b = airtruct_builtins::builtin(kind)
        .ok_or_else(|| ValidationError::new("", format!("no built-in \"{kind}\"")))?;
    engine.load(b.wasm).map_err(|e| {
        ValidationError::new("", format!("loading built-in processor \"{kind}\": {e}"))
    })
}

/// Uploaded processor components available to a validation, by name and version (fetched beforehand by the
/// coordinator or the worker; empty for `airtruct run`).
#[derive(Debug, Default, Clone)]
pub struct Uploaded(HashMap<(String, i64), Arc<LoadedComponent>>);

impl Uploaded {
    pub fn insert(&mut self, name: &str, version: i64, component: Arc<LoadedComponent>) {
        self.0.insert((name.to_string(), version), component);
    }

    fn get(&self, name: &str, version: i64) -> Option<&Arc<LoadedComponent>> {
        self.0.get(&(name.to_string(), version))
    }
}

/// A `wasm` processor that names an uploaded component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedRef {
    /// Its index in `pipeline.processors`.
    pub index: usize,
    pub name: String,
    pub version: Option<i64>,
}

impl UploadedRef {
    /// Where its `name` sits in the config.
    pub fn path(&self) -> String {
        format!("pipeline.processors[{}].wasm.name", self.index)
    }
}

/// The options of every `wasm` processor of a stream config (as JSON), with its index in `pipeline.processors`.
pub fn wasm_steps(config: &Value) -> impl Iterator<Item = (usize, &Value)> {
    config
        .pointer("/pipeline/processors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, step)| Some((index, step.get("wasm")?)))
}

/// Every uploaded component a stream config names, in order.
pub fn uploaded_refs(config: &Value) -> Vec<UploadedRef> {
    wasm_steps(config)
        .filter_map(|(index, wasm)| {
            Some(UploadedRef {
                index,
                name: wasm.get("name")?.as_str()?.to_string(),
                version: wasm.get("version").and_then(Value::as_i64),
            })
        })
        .collect()
}

/// Resolves a processor entry to its component and configuration. Loading compiles the component the first time
/// (or reads it from the engine's cache).
pub fn resolve_processor(
    engine: &Engine,
    c: &Component,
    uploaded: &Uploaded,
) -> Result<ProcessorSpec, ValidationError> {
    let mut limits = Limits::default();
    let (component, config) = match c.kind.as_str() {
        "wasm" => {
            let w: WasmProcessorConfig = options(c)?;
            let at = |field: &str| join_path(&c.options_path(), field);
            limits = w.limits.resolve(engine, &at("limits"))?;
            let component = match (&w.path, &w.name) {
                (Some(_), Some(_)) => {
                    return Err(ValidationError::new(
                        c.options_path(),
                        "give either `name` (an uploaded processor) or `path`, not both",
                    ));
                }
                (None, None) => {
                    return Err(ValidationError::new(
                        c.options_path(),
                        "`name` (an uploaded processor) or `path` is required",
                    ));
                }
                (None, Some(name)) => {
                    let version = w.version.ok_or_else(|| {
                        ValidationError::new(
                            at("version"),
                            "required (saving a stream through the API pins the latest)",
                        )
                    })?;
                    uploaded.get(name, version).cloned().ok_or_else(|| {
                        ValidationError::new(
                            at("name"),
                            format!(
                                "uploaded processor \"{name}\" version {version} is not available here (uploaded processors run on a coordinator's workers; `airtruct run` takes `path`)"
                            ),
                        )
                    })?
                }
                (Some(path), None) => {
                    let bytes = std::fs::read(path).map_err(|e| {
                        ValidationError::new(
                            at("path"),
                            format!("reading \"{}\": {e}", path.display()),
                        )
                    })?;
                    engine
                        .load(&bytes)
                        .map_err(|e| ValidationError::new(at("path"), e.to_string()))?
                }
            };
            (
                component,
                w.config.unwrap_or(Value::Object(Default::default())),
            )
        }
        kind if airtruct_builtins::builtin(kind).is_some() => {
            let component = builtin_component(engine, kind)
                .map_err(|e| ValidationError::new(&c.path, e.message))?;
            (component, c.options.clone())
        }
        _ => return Err(unknown(c, processors_names(), "processor")),
    };
    Ok(ProcessorSpec {
        path: c.path.clone(),
        kind: c.kind.clone(),
        component,
        config: config.to_string(),
        limits,
    })
}

fn processors_names() -> Vec<KindDoc> {
    airtruct_builtins::BUILTINS
        .iter()
        .map(|b| b.kind)
        .chain(["wasm"])
        .map(|k| KindDoc {
            kind: k.into(),
            role: Role::Processor,
            description: String::new(),
            config_schema: Value::Null,
        })
        .collect()
}
