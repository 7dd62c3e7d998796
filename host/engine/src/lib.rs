//! The wasm engine: one wasmtime `Engine` per process, processor components compiled once and cached on disk,
//! and instances that run under a memory cap, a CPU-time deadline per call and a stack limit.
//!
//! Calls are synchronous: callers run them on threads of their own, never on an async reactor thread.

mod bindings;
mod cache;
pub mod capabilities;
mod guest_io;
mod instance;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use bindings::{ConfigError, Info, Level, Message};
pub use capabilities::{Capability, Grants, HostAccess, HostError, Resources};
pub use instance::{InitError, InstantiationTimes, ProcessError, ProcessorInstance};

use bindings::ProcessorPre;
use instance::{Pre, State};

/// How often the epoch advances; the CPU-time limit of a call is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every instance of a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most memory one instance may use, in bytes: all its linear memories and tables together.
    pub memory_bytes: usize,
    /// Most time one call (`init` or one `process` batch) may run.
    pub timeout: Duration,
    /// Most payload bytes one `process` call may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(5),
            max_output_bytes: 64 << 20,
        }
    }
}

/// How the engine is set up, once per process.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled components are cached; `None` compiles in memory only.
    pub cache_dir: Option<PathBuf>,
    /// The largest memory cap any processor may be given (the pool reserves slots of this size).
    pub max_memory_bytes: usize,
    /// Largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// Wasm stack limit per call, in bytes.
    pub max_stack_bytes: usize,
    /// Instances the pool can hold at once.
    pub pool_instances: u32,
    /// How long compiling one component may take; a component that takes longer is refused.
    pub compile_timeout: Duration,
    /// Components compiled at once; more wait for a turn within their deadline.
    pub compiles_at_once: usize,
    /// Whether Cranelift inlines calls between and within a component's modules (measured in `airtruct-bench
    /// inlining`: see docs/benchmarks.md).
    pub inlining: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_memory_bytes: 1 << 30,
            max_component_bytes: 32 << 20,
            max_stack_bytes: 1 << 20,
            pool_instances: 1000,
            compile_timeout: Duration::from_secs(60),
            compiles_at_once: 2,
            inlining: false,
        }
    }
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "this is a core wasm module, not a component: build for the wasm32-wasip2 target \
         (`cargo build --release --target wasm32-wasip2`) or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("not a WebAssembly component: the file does not start with the wasm magic bytes")]
    NotWasm,
    #[error("component is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("component does not compile: {0}")]
    Compile(String),
    #[error(
        "component took longer than {0:?} to compile and is refused: make it smaller (fewer or smaller \
         functions), or ask the operator to raise the compile deadline"
    )]
    CompileTimeout(Duration),
    #[error("too many components are compiling right now: try again in a moment")]
    CompileBusy,
    #[error("component does not target the airtruct:processor world (0.2.0 or 0.1.0): {0}")]
    WrongWorld(String),
    #[error("component imports what the processor contract does not grant: {0}")]
    ForbiddenImport(String),
    #[error("describe() failed: {0}")]
    Describe(ProcessError),
    #[error("component cache: {0}")]
    Cache(String),
}

/// A compiled processor component, ready to instantiate.
pub struct LoadedComponent {
    pre: Pre,
    sha256: String,
    info: Info,
    capabilities: Vec<Capability>,
}

impl LoadedComponent {
    /// The sha256 of the component's bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What the component said of itself.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The capabilities it asks for (none for a 0.1.0 component).
    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    /// The version of the contract it targets: `0.1.0` or `0.2.0`.
    pub fn contract(&self) -> &'static str {
        self.pre.contract()
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("name", &self.info.name)
            .field("sha256", &self.sha256)
            .finish()
    }
}

struct Inner {
    engine: wasmtime::Engine,
    linker: Linker<State>,
    config: EngineConfig,
    loaded: Mutex<HashMap<String, Arc<LoadedComponent>>>,
    /// A lock per component being loaded, by sha256, so the same component is compiled once.
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The key that authenticates this installation's cache files.
    cache_key: Option<[u8; 32]>,
    /// Compilations running (including ones whose caller gave up at the deadline), against `compiles_at_once`.
    compiling: Arc<(Mutex<usize>, std::sync::Condvar)>,
}

/// The process's wasm engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Builds the engine and starts its epoch ticker thread (it stops when the last clone is dropped).
    pub fn new(config: EngineConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.pool_instances)
            .total_core_instances(config.pool_instances * 4)
            .total_memories(config.pool_instances * 2)
            .total_tables(config.pool_instances * 4)
            .total_stacks(config.pool_instances)
            .max_memory_size(config.max_memory_bytes)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(32)
            .table_elements(200_000)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20);
        let mut wasm = Config::new();
        wasm.strategy(wasmtime::Strategy::Cranelift)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_stack_bytes)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if config.inlining {
            wasm.compiler_inlining(wasmtime::Inlining::Yes);
        }
        // For profiling with `perf`: the compiled guests' function names in /tmp/perf-<pid>.map.
        if std::env::var_os("AIRTRUCT_WASM_PROFILER").is_some_and(|v| v == "perfmap") {
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wasmtime::Engine::new(&wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        forbid_sleeping(&mut linker)?;
        bindings::Processor::add_to_linker::<State, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        // 0.2.0's `types` are 0.1.0's Rust types (see `bindings`), so its add_to_linker defines the 0.1.0 name:
        // the 0.2.0 name, an instance of types only, is defined here.
        linker.instance("airtruct:processor/types@0.2.0")?;
        bindings::v2::Processor::add_to_linker::<State, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        let cache_key = match &config.cache_dir {
            Some(dir) => {
                cache::prepare_dir(dir)?;
                Some(cache::key(dir)?)
            }
            None => None,
        };
        let inner = Arc::new(Inner {
            cache_key,
            engine,
            linker,
            config,
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            compiling: Arc::default(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(inner) = weak.upgrade() {
                    inner.engine.increment_epoch();
                    drop(inner);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Self { inner })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Loads a component: checks it, compiles it (or reads it from the cache) and asks it to describe itself.
    /// A component already loaded by this process is returned from memory.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, LoadError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(LoadError::CoreModule),
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => return Err(LoadError::NotWasm),
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(loaded) = self.inner.loaded.lock().unwrap().get(&sha256) {
            return Ok(loaded.clone());
        }
        // One load per component at a time: a caller that comes while another compiles the same bytes (the
        // startup prewarm, two streams saved at once) waits for that compile instead of starting its own.
        let turn = self
            .inner
            .loading
            .lock()
            .unwrap()
            .entry(sha256.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.load_now(bytes, &sha256);
        self.inner.loading.lock().unwrap().remove(&sha256);
        result
    }

    fn load_now(&self, bytes: &[u8], sha256: &str) -> Result<Arc<LoadedComponent>, LoadError> {
        if let Some(loaded) = self.inner.loaded.lock().unwrap().get(sha256) {
            return Ok(loaded.clone());
        }
        let sha256 = sha256.to_string();
        let cache = self
            .inner
            .config
            .cache_dir
            .as_deref()
            .zip(self.inner.cache_key.as_ref());
        if let Some((dir, key)) = cache
            && let Some(component) = cache::load(&self.inner.engine, dir, key, &sha256)
        {
            return self.finish(sha256, component);
        }
        let component = self.compile(bytes)?;
        if let Some((dir, key)) = cache {
            cache::store(&self.inner.engine, dir, key, &sha256, &component)?;
        }
        self.finish(sha256, component)
    }

    /// Compiles on a thread of its own, at most `compiles_at_once` at a time, and gives up waiting at the
    /// deadline. Compilation cannot be stopped midway: an abandoned one runs to its end and still holds its
    /// turn, so the bound holds however many callers gave up.
    fn compile(&self, bytes: &[u8]) -> Result<wasmtime::component::Component, LoadError> {
        let timeout = self.inner.config.compile_timeout;
        let deadline = std::time::Instant::now() + timeout;
        let (count, freed) = &*self.inner.compiling;
        {
            let running = count.lock().unwrap();
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            let (mut running, waited) = freed
                .wait_timeout_while(running, wait, |n| *n >= self.inner.config.compiles_at_once)
                .unwrap();
            if waited.timed_out() && *running >= self.inner.config.compiles_at_once {
                return Err(LoadError::CompileBusy);
            }
            *running += 1;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let engine = self.inner.engine.clone();
        let compiling = self.inner.compiling.clone();
        let bytes = bytes.to_vec();
        let started = std::time::Instant::now();
        let spawned = std::thread::Builder::new()
            .name("wasm-compile".into())
            .spawn(move || {
                let result = wasmtime::component::Component::new(&engine, &bytes)
                    .map_err(|e| LoadError::Compile(format!("{e:#}")));
                let (count, freed) = &*compiling;
                *count.lock().unwrap() -= 1;
                freed.notify_one();
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            let (count, freed) = &*self.inner.compiling;
            *count.lock().unwrap() -= 1;
            freed.notify_one();
            return Err(LoadError::Compile(format!(
                "starting a compile thread: {e}"
            )));
        }
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(wait) {
            Ok(result) => {
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    "compiled component"
                );
                result
            }
            Err(_) => {
                tracing::warn!(?timeout, "a component took too long to compile: refused");
                Err(LoadError::CompileTimeout(timeout))
            }
        }
    }

    /// Loads a component by its sha256 from memory or from the disk cache, without its bytes: `None` when it was
    /// never compiled here (the caller then fetches the bytes and calls [`Engine::load`]).
    pub fn load_cached(&self, sha256: &str) -> Option<Result<Arc<LoadedComponent>, LoadError>> {
        if let Some(loaded) = self.inner.loaded.lock().unwrap().get(sha256) {
            return Some(Ok(loaded.clone()));
        }
        let dir = self.inner.config.cache_dir.as_deref()?;
        let key = self.inner.cache_key.as_ref()?;
        let component = cache::load(&self.inner.engine, dir, key, sha256)?;
        Some(self.finish(sha256.to_string(), component))
    }

    /// Checks a compiled component against the contract, asks it to describe itself, and keeps it in memory.
    fn finish(
        &self,
        sha256: String,
        component: wasmtime::component::Component,
    ) -> Result<Arc<LoadedComponent>, LoadError> {
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            let msg = format!("{e:#}");
            if msg.contains("wasi:") {
                LoadError::ForbiddenImport(msg)
            } else {
                LoadError::WrongWorld(msg)
            }
        })?;
        check_imports(&self.inner.engine, &component)?;
        // The version whose exports it has: 0.2.0's `describe` returns a description, 0.1.0's an info.
        let pre = match bindings::v2::ProcessorPre::new(instance_pre.clone()) {
            Ok(pre) => Pre::V2(pre),
            Err(v2) => match ProcessorPre::new(instance_pre) {
                Ok(pre) => Pre::V1(pre),
                Err(v1) => {
                    return Err(LoadError::WrongWorld(format!(
                        "as 0.2.0: {v2:#}; as 0.1.0: {v1:#}"
                    )));
                }
            },
        };
        let (info, capabilities) = instance::describe(&pre, &self.inner.engine, Limits::default())
            .map_err(LoadError::Describe)?;
        let loaded = Arc::new(LoadedComponent {
            pre,
            sha256: sha256.clone(),
            info,
            capabilities,
        });
        self.inner
            .loaded
            .lock()
            .unwrap()
            .insert(sha256, loaded.clone());
        Ok(loaded)
    }

    /// Creates an instance of a loaded component and runs its `init` with `config` (JSON text). It has no
    /// capability: every call through one is `not-granted`.
    pub fn instantiate(
        &self,
        component: &Arc<LoadedComponent>,
        config: &str,
        limits: Limits,
    ) -> Result<ProcessorInstance, InitError> {
        self.instantiate_with(component, config, limits, None)
    }

    /// [`Engine::instantiate`], reaching the stream's resources through `access` as its grants allow.
    pub fn instantiate_with(
        &self,
        component: &Arc<LoadedComponent>,
        config: &str,
        limits: Limits,
        access: Option<HostAccess>,
    ) -> Result<ProcessorInstance, InitError> {
        ProcessorInstance::new(
            self.inner.engine.clone(),
            component.clone(),
            config.to_string(),
            limits,
            access,
        )
    }
}

/// The interfaces a processor may import: its contract's `log` and (0.2.0) capabilities, each call of which is
/// checked against the instance's grants, and the WASI interfaces that language runtimes
/// import at start-up (environment, stdio, clocks, random, and filesystem types). They are linked with an empty
/// context: no variables, no arguments, no preopened directory, a wall clock standing at the start of each call,
/// a monotonic clock at zero. Anything else (sockets, HTTP, a world of another host) is refused by name when the component is loaded.
const ALLOWED_IMPORTS: &[&str] = &[
    "airtruct:processor/types",
    "airtruct:processor/log",
    "airtruct:processor/capabilities",
    "airtruct:processor/http",
    "airtruct:processor/sql",
    "airtruct:processor/cache",
    "airtruct:processor/rate-limit",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

fn check_imports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(), LoadError> {
    let mut refused = Vec::new();
    for (name, _) in component.component_type().imports(engine) {
        let unversioned = name.split('@').next().unwrap_or(name);
        if !ALLOWED_IMPORTS.contains(&unversioned) {
            refused.push(name.to_string());
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    let sample = refused
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let hint = if refused
        .iter()
        .any(|n| n.starts_with("wasi:sockets") || n.starts_with("wasi:http"))
    {
        " (processors have no network access of their own: call out through the 0.2.0 contract's `http` \
         capability, which the stream grants, or do I/O in an input or output)"
    } else {
        ""
    };
    Err(LoadError::ForbiddenImport(format!("{sample}{hint}")))
}

/// WASI lets a guest wait on a monotonic-clock deadline inside host code, where the epoch deadline cannot
/// interrupt it: a processor could sleep past its time limit. Processors have nothing to wait for, so both ways of
/// subscribing to the clock trap instead.
fn forbid_sleeping(linker: &mut Linker<State>) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(
            name,
            |_store, (_when,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
                Err(wasmtime::format_err!(
                    "processors may not sleep or wait on a clock"
                ))
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

impl Engine {
    /// Measures the steps of creating an instance of `component` (benchmarks).
    pub fn time_instantiation(
        &self,
        component: &LoadedComponent,
        config: &str,
        n: u32,
    ) -> Result<InstantiationTimes, ProcessError> {
        instance::time_instantiation(&self.inner.engine, component, config, n.max(1))
    }
}
