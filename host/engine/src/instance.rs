//! A processor instance: one store, one instantiated component and its configuration. A trap, a timeout or a
//! memory-cap hit fails the call; the store is then dropped and the next call runs on a fresh instance.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, ConfigError, Info, Level, Message, Processor, ProcessorPre, v2};
use crate::capabilities::{Capability, HostAccess};
use crate::guest_io::{CallClock, FrozenClock, GuestOutput};
use crate::{EPOCH_TICK, Limits, LoadedComponent};

/// Why a call into a processor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("processor exceeded its time limit of {0:?}")]
    Timeout(Duration),
    #[error("processor exceeded its memory limit of {0} bytes")]
    MemoryLimit(usize),
    #[error("processor trapped: {0}")]
    Trap(String),
    #[error("processor returned {size} bytes, over its output limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("processor failed the batch: {0}")]
    Failed(String),
}

/// Why an instance could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    #[error("invalid processor configuration")]
    Config(Vec<ConfigError>),
    #[error(transparent)]
    Call(#[from] ProcessError),
}

/// The host state of one store.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Budget,
    output: GuestOutput,
    /// The guest's wall clock, set to now before each call.
    clock: CallClock,
    name: String,
    /// The guest's log budget: lines left in the current second, and when that second started.
    log_budget: (u32, std::time::Instant),
    /// Lines dropped over the budget since the last one logged.
    log_dropped: u64,
    /// The stream's resources and this processor's grants (none: every capability call is `not-granted`).
    pub(crate) access: Option<HostAccess>,
    /// When the current call's time limit runs out: capability calls give up by then.
    pub(crate) deadline: std::time::Instant,
    /// Time spent waiting on a rate limit in the current call, which its time limit does not count.
    pub(crate) excused: Duration,
}

/// The most log lines a guest instance writes per second; more are counted and dropped.
pub const LOG_LINES_PER_SECOND: u32 = 100;
/// The longest log line a guest writes; a longer one is cut.
pub const LOG_LINE_BYTES: usize = 4096;

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::airtruct::processor::types::Host for State {}

impl bindings::airtruct::processor::log::Host for State {
    fn log(&mut self, level: Level, mut message: String) {
        let now = std::time::Instant::now();
        if now.duration_since(self.log_budget.1) >= std::time::Duration::from_secs(1) {
            if self.log_dropped > 0 {
                tracing::warn!(processor = %self.name, dropped = self.log_dropped, "guest log lines over {LOG_LINES_PER_SECOND} a second were dropped");
                self.log_dropped = 0;
            }
            self.log_budget = (LOG_LINES_PER_SECOND, now);
        }
        if self.log_budget.0 == 0 {
            self.log_dropped += 1;
            return;
        }
        self.log_budget.0 -= 1;
        if message.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let len = message.len();
            message.truncate(cut);
            message.push_str(&format!("... ({len} bytes)"));
        }
        let processor = self.name.as_str();
        match level {
            Level::Trace => tracing::trace!(processor, "{message}"),
            Level::Debug => tracing::debug!(processor, "{message}"),
            Level::Info => tracing::info!(processor, "{message}"),
            Level::Warn => tracing::warn!(processor, "{message}"),
            Level::Error => tracing::error!(processor, "{message}"),
        }
    }
}

/// What a table element costs against the memory budget.
const TABLE_ELEMENT_BYTES: usize = 16;

/// One memory budget for a whole instance: every linear memory and table of every core module in it draws on
/// the same `limit` (a component may hold several memories).
struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    fn grow(&mut self, more: usize) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(more);
        if total > self.limit {
            // An error, not a refusal: the call traps at once instead of a guest's allocator looping on -1.
            return Err(wasmtime::Error::msg(format!(
                "growing memory to {total} bytes in all, over the instance's budget of {} bytes",
                self.limit
            )));
        }
        self.used = total;
        Ok(true)
    }
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            desired
                .saturating_sub(current)
                .saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }
}

fn new_store(
    engine: &wasmtime::Engine,
    name: &str,
    limits: Limits,
    access: Option<HostAccess>,
) -> Store<State> {
    let output = GuestOutput::default();
    let clock = CallClock::default();
    // No capability: no environment, arguments, directories, sockets or timer; the wall clock is the time the
    // current call began.
    let wasi = WasiCtx::builder()
        .stdout(output.clone())
        .stderr(output.clone())
        .wall_clock(clock.clone())
        .monotonic_clock(FrozenClock)
        .allow_blocking_current_thread(true)
        .build();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        limits: Budget {
            limit: limits.memory_bytes,
            used: 0,
        },
        output,
        clock,
        name: name.to_string(),
        log_budget: (LOG_LINES_PER_SECOND, std::time::Instant::now()),
        log_dropped: 0,
        access,
        deadline: std::time::Instant::now(),
        excused: Duration::ZERO,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // At the deadline the call traps, unless it waited on a rate limit: that wait is given back once.
    store.epoch_deadline_callback(|mut cx| {
        let s = cx.data_mut();
        let ticks = (s.excused.as_millis() / EPOCH_TICK.as_millis()) as u64;
        if ticks == 0 {
            return Err(Trap::Interrupt.into());
        }
        s.excused = Duration::ZERO;
        Ok(wasmtime::UpdateDeadline::Continue(ticks))
    });
    store
}

/// Runs one call under the deadline and turns its failure into a [`ProcessError`].
fn call<R>(
    store: &mut Store<State>,
    limits: Limits,
    f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, ProcessError> {
    let ticks = (limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.data().clock.set_now();
    store.data_mut().deadline = std::time::Instant::now() + limits.timeout;
    store.data_mut().excused = Duration::ZERO;
    let result = f(store);
    let printed = store.data().output.drain();
    let name = store.data().name.clone();
    for line in printed.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!(processor = %name, "guest: {line}");
    }
    result.map_err(|e| classify(e, limits, &printed))
}

fn classify(e: wasmtime::Error, limits: Limits, printed: &str) -> ProcessError {
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return ProcessError::Timeout(limits.timeout);
    }
    let chain = format!("{e:#}");
    if chain.contains("growing memory") || chain.contains("memory growth failure") {
        return ProcessError::MemoryLimit(limits.memory_bytes);
    }
    let trap = match e.downcast_ref::<Trap>() {
        Some(t) => t.to_string(),
        // A host function refused (e.g. a guest tried to sleep): the root cause says what.
        None => e.root_cause().to_string(),
    };
    // A Rust guest prints "panicked at ...:\n<message>" before trapping: keep what it said.
    let said: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = said
        .iter()
        .rev()
        .take(2)
        .rev()
        .copied()
        .collect::<Vec<_>>()
        .join(": ");
    if tail.is_empty() {
        ProcessError::Trap(trap)
    } else {
        ProcessError::Trap(format!("{trap} (guest said: {tail})"))
    }
}

/// A component ready to instantiate, by the contract version it targets.
pub(crate) enum Pre {
    V1(ProcessorPre<State>),
    V2(v2::ProcessorPre<State>),
}

impl Pre {
    /// The contract version: `0.1.0`, `0.2.0`.
    pub(crate) fn contract(&self) -> &'static str {
        match self {
            Pre::V1(_) => "0.1.0",
            Pre::V2(_) => "0.2.0",
        }
    }

    fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V1(p) => Bindings::V1(p.instantiate(store)?),
            Pre::V2(p) => Bindings::V2(p.instantiate(store)?),
        })
    }
}

/// An instantiated component's exports.
enum Bindings {
    V1(Processor),
    V2(v2::Processor),
}

impl Bindings {
    fn init(
        &self,
        store: &mut Store<State>,
        config: &str,
    ) -> wasmtime::Result<Result<(), Vec<ConfigError>>> {
        match self {
            Bindings::V1(b) => b.call_init(store, config),
            Bindings::V2(b) => b.call_init(store, config),
        }
    }

    fn process(
        &self,
        store: &mut Store<State>,
        batch: &[Message],
    ) -> wasmtime::Result<Result<Vec<Message>, String>> {
        match self {
            Bindings::V1(b) => b.call_process(store, batch),
            Bindings::V2(b) => b.call_process(store, batch),
        }
    }
}

/// Instantiates a component once to ask it to describe itself, and what capabilities it asks for.
pub(crate) fn describe(
    pre: &Pre,
    engine: &wasmtime::Engine,
    limits: Limits,
) -> Result<(Info, Vec<Capability>), ProcessError> {
    let mut store = new_store(engine, "describe", limits, None);
    let bindings = call(&mut store, limits, |s| pre.instantiate(s))?;
    call(&mut store, limits, |s| match &bindings {
        Bindings::V1(b) => Ok((b.call_describe(s)?, Vec::new())),
        Bindings::V2(b) => {
            let d = b.call_describe(s)?;
            let mut asked = d.capabilities;
            asked.dedup();
            Ok((d.info, asked))
        }
    })
}

struct Live {
    store: Store<State>,
    bindings: Bindings,
}

/// A configured processor instance. Not shared between threads: each processor thread owns its own.
pub struct ProcessorInstance {
    engine: wasmtime::Engine,
    component: Arc<LoadedComponent>,
    config: String,
    limits: Limits,
    access: Option<HostAccess>,
    live: Option<Live>,
    restarts: u64,
}

impl ProcessorInstance {
    pub(crate) fn new(
        engine: wasmtime::Engine,
        component: Arc<LoadedComponent>,
        config: String,
        limits: Limits,
        access: Option<HostAccess>,
    ) -> Result<Self, InitError> {
        let mut inst = Self {
            engine,
            component,
            config,
            limits,
            access,
            live: None,
            restarts: 0,
        };
        inst.start()?;
        Ok(inst)
    }

    fn start(&mut self) -> Result<&mut Live, InitError> {
        let mut store = new_store(
            &self.engine,
            &self.component.info().name,
            self.limits,
            self.access.clone(),
        );
        let bindings = call(&mut store, self.limits, |s| {
            self.component.pre.instantiate(s)
        })?;
        let config = &self.config;
        call(&mut store, self.limits, |s| bindings.init(s, config))?.map_err(InitError::Config)?;
        Ok(self.live.insert(Live { store, bindings }))
    }

    /// The component this instance runs.
    pub fn component(&self) -> &Arc<LoadedComponent> {
        &self.component
    }

    /// How many times the instance was replaced after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Runs `process` on a batch. After a trap, timeout or memory-cap hit the instance is replaced before the
    /// next call.
    pub fn process(&mut self, batch: &[Message]) -> Result<Vec<Message>, ProcessError> {
        let limits = self.limits;
        let live = match self.live.as_mut() {
            Some(live) => live,
            None => {
                self.restarts += 1;
                self.start().map_err(|e| match e {
                    InitError::Call(e) => e,
                    InitError::Config(errors) => ProcessError::Failed(format!(
                        "re-initializing after a failure: {}",
                        errors
                            .iter()
                            .map(|e| e.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                })?
            }
        };
        let bindings = &live.bindings;
        match call(&mut live.store, limits, |s| bindings.process(s, batch)) {
            Ok(Ok(mut out)) => {
                // What a guest returns is checked once here, so every reader downstream sees one value per key.
                for m in &mut out {
                    if let Err(e) = airtruct_codec::Metadata::check(&m.metadata) {
                        m.metadata.clear();
                        m.error = Some(format!("the processor returned {e}"));
                    }
                }
                let size: usize = out.iter().map(|m| m.payload.len() + m.metadata.len()).sum();
                if size > limits.max_output_bytes {
                    return Err(ProcessError::OutputTooLarge {
                        size,
                        limit: limits.max_output_bytes,
                    });
                }
                Ok(out)
            }
            // The guest returned an error for the whole batch; its state is intact.
            Ok(Err(msg)) => Err(ProcessError::Failed(msg)),
            Err(e) => {
                self.live = None;
                Err(e)
            }
        }
    }
}

/// Mean times of the steps of creating an instance, for the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct InstantiationTimes {
    /// A store with its WASI context and limits.
    pub store: Duration,
    /// Instantiating the pre-linked component in the pool.
    pub instantiate: Duration,
    /// The guest's `init` with the given configuration.
    pub init: Duration,
    /// Dropping the store, which resets its pool slot.
    pub drop: Duration,
}

/// Measures [`InstantiationTimes`] over `n` instances.
pub(crate) fn time_instantiation(
    engine: &wasmtime::Engine,
    component: &LoadedComponent,
    config: &str,
    n: u32,
) -> Result<InstantiationTimes, ProcessError> {
    let limits = Limits::default();
    let mut t = [Duration::ZERO; 4];
    for _ in 0..n {
        let start = std::time::Instant::now();
        let mut store = new_store(engine, "bench", limits, None);
        store.set_epoch_deadline(1000);
        let s1 = std::time::Instant::now();
        let bindings = component
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, limits, ""))?;
        let s2 = std::time::Instant::now();
        let _ = bindings
            .init(&mut store, config)
            .map_err(|e| classify(e, limits, ""))?;
        let s3 = std::time::Instant::now();
        drop(store);
        let s4 = std::time::Instant::now();
        for (acc, d) in t.iter_mut().zip([s1 - start, s2 - s1, s3 - s2, s4 - s3]) {
            *acc += d;
        }
    }
    Ok(InstantiationTimes {
        store: t[0] / n,
        instantiate: t[1] / n,
        init: t[2] / n,
        drop: t[3] / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindings::airtruct::processor::log::Host as _;

    #[test]
    fn a_guest_logs_at_most_its_budget_a_second_and_the_rest_is_counted() {
        let engine = wasmtime::Engine::default();
        let mut store = new_store(&engine, "chatty", Limits::default(), None);
        let state = store.data_mut();
        for _ in 0..LOG_LINES_PER_SECOND + 50 {
            state.log(Level::Info, "x".repeat(LOG_LINE_BYTES * 2));
        }
        assert_eq!(state.log_budget.0, 0);
        assert_eq!(state.log_dropped, 50);
        // A new second: the budget is back, and the dropped lines were counted in one warning.
        state.log_budget.1 -= Duration::from_secs(1);
        state.log(Level::Info, "again".into());
        assert_eq!(state.log_dropped, 0);
        assert_eq!(state.log_budget.0, LOG_LINES_PER_SECOND - 1);
    }
}
