//! The VRL service: compiles VRL in the sandbox for any kind that takes it, so no kind builds another kind by
//! name: a program whose value is the result (`sql_insert`'s `args_mapping`, by the built-in `mapping`
//! component) and a condition (a `switch`'s `check`, by the built-in `filter` component). Validation compiles
//! it once to report its diagnostics; the running component instantiates it and runs batches through it.

use std::sync::Arc;

use airtruct_engine::{Engine, InitError, Limits, LoadedComponent, ProcessorInstance};

use crate::{Error, Message};

/// Compiles VRL programs with one engine.
#[derive(Clone)]
pub struct Vrl {
    engine: Engine,
}

/// VRL that compiled in a built-in component, ready to instantiate.
#[derive(Clone)]
struct Compiled {
    engine: Engine,
    component: Arc<LoadedComponent>,
    /// The component's configuration.
    config: String,
    /// What it is, for errors (`VRL program`, `VRL condition`).
    what: &'static str,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.what)
            .field("config", &self.config)
            .finish()
    }
}

impl Compiled {
    /// Compiles `config` in the built-in component `kind`: compiling is `init`, so an instance made now says
    /// whether the VRL is valid. `Err` carries VRL's diagnostics.
    fn new(
        engine: &Engine,
        kind: &str,
        config: String,
        what: &'static str,
    ) -> Result<Self, String> {
        let builtin = airtruct_builtins::builtin(kind)
            .ok_or_else(|| format!("the built-in {kind} component is missing"))?;
        let component = crate::processors::load_builtin(engine, builtin)
            .map_err(|e| format!("loading the VRL component: {e}"))?;
        let compiled = Self {
            engine: engine.clone(),
            component,
            config,
            what,
        };
        compiled.instance().map_err(|e| match e {
            InitError::Config(errors) => errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
            InitError::Call(e) => e.to_string(),
        })?;
        Ok(compiled)
    }

    fn instance(&self) -> Result<ProcessorInstance, InitError> {
        self.engine
            .instantiate(&self.component, &self.config, Limits::default())
    }

    /// A running instance.
    fn runner(&self) -> Result<Runner, Error> {
        let instance = self
            .instance()
            .map_err(|e| Error::User(format!("{}: {e}", self.what)))?;
        Ok(Runner {
            instance: Some(instance),
            compiled: self.clone(),
        })
    }
}

/// An instance of compiled VRL; a call that trapped leaves it to be made again.
struct Runner {
    instance: Option<ProcessorInstance>,
    compiled: Compiled,
}

impl Runner {
    /// One call, on this thread.
    fn process_blocking(&mut self, batch: &[Message]) -> Result<Vec<Message>, Error> {
        let what = self.compiled.what;
        let mut instance = match self.instance.take() {
            Some(i) => i,
            None => self
                .compiled
                .instance()
                .map_err(|e| Error::User(format!("{what}: {e}")))?,
        };
        let out = instance.process(batch);
        self.instance = Some(instance);
        out.map_err(|e| Error::User(format!("{what}: {e}")))
    }

    /// One call, off the async reactor.
    async fn process(&mut self, batch: &[Message]) -> Result<Vec<Message>, Error> {
        let mut this = Runner {
            instance: self.instance.take(),
            compiled: self.compiled.clone(),
        };
        let input = batch.to_vec();
        let (this, out) = tokio::task::spawn_blocking(move || {
            let out = this.process_blocking(&input);
            (this, out)
        })
        .await
        .map_err(|e| Error::Internal(format!("{}: {e}", self.compiled.what)))?;
        self.instance = this.instance;
        out
    }
}

/// A VRL program whose value is the result, ready to instantiate.
#[derive(Clone, Debug)]
pub struct VrlProgram(Compiled);

/// A VRL condition (`.level == "error"`), compiled by the built-in `filter` component so that it means exactly
/// what it means in a `filter` processor: `true` or `false`, and any other result or a runtime error fails the
/// message.
#[derive(Clone, Debug)]
pub struct VrlCondition(Compiled);

impl Vrl {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// A program whose value (its last expression: `[.id, .name]`) becomes each message's payload, as JSON.
    /// `Err` carries VRL's diagnostics.
    pub fn value_program(&self, source: &str) -> Result<VrlProgram, String> {
        // The mapping component's result is `.`: the program's value is assigned to it.
        let wrapped = format!(". = if true {{\n{source}\n}}");
        let config = serde_json::Value::String(wrapped).to_string();
        Compiled::new(&self.engine, "mapping", config, "VRL program").map(VrlProgram)
    }

    /// A condition. `Err` carries VRL's diagnostics (or says it does not return a boolean).
    pub fn condition(&self, source: &str) -> Result<VrlCondition, String> {
        let config = serde_json::Value::String(source.to_string()).to_string();
        Compiled::new(&self.engine, "filter", config, "VRL condition").map(VrlCondition)
    }
}

impl VrlProgram {
    /// A running instance of the program.
    pub fn runner(&self) -> Result<VrlRunner, Error> {
        self.0.runner().map(VrlRunner)
    }
}

/// An instance of a program that runs batches off the async reactor.
pub struct VrlRunner(Runner);

impl VrlRunner {
    /// Runs the program on each message; the result has one message per input (with `error` set where the
    /// program failed), or `Err` when the whole call failed.
    pub async fn run(&mut self, batch: &[Message]) -> Result<Vec<Message>, Error> {
        one_per_message(batch, self.0.process(batch).await?)
    }

    /// [`VrlRunner::run`] on this thread (for processor threads).
    pub fn run_blocking(&mut self, batch: &[Message]) -> Result<Vec<Message>, Error> {
        one_per_message(batch, self.0.process_blocking(batch)?)
    }
}

/// A program's results, which must be one per message.
fn one_per_message(batch: &[Message], out: Vec<Message>) -> Result<Vec<Message>, Error> {
    if out.len() != batch.len() {
        return Err(Error::User(format!(
            "VRL program gave {} results for {} messages: it must not filter or split",
            out.len(),
            batch.len()
        )));
    }
    Ok(out)
}

impl VrlCondition {
    /// A running instance of the condition.
    pub fn runner(&self) -> Result<ConditionRunner, Error> {
        self.0.runner().map(ConditionRunner)
    }
}

/// What a condition said of one message: `Ok(true)` or `Ok(false)`, or why it failed.
pub type Verdict = Result<bool, String>;

/// An instance of a condition.
pub struct ConditionRunner(Runner);

impl ConditionRunner {
    /// Evaluates the condition on each message, in one call (on this thread: for processor threads).
    pub fn eval_blocking(&mut self, batch: &[Message]) -> Result<Vec<Verdict>, Error> {
        let out = self.0.process_blocking(batch)?;
        align_verdicts(batch, &out)
    }

    /// [`ConditionRunner::eval_blocking`] off the async reactor.
    pub async fn eval(&mut self, batch: &[Message]) -> Result<Vec<Verdict>, Error> {
        let out = self.0.process(batch).await?;
        align_verdicts(batch, &out)
    }
}

/// Reads the `filter` component's answer as one verdict per message. The filter hands back, in order, the
/// messages it keeps unchanged and the ones it failed (unchanged but for `error`), and nothing for the ones it
/// drops: its output is an order-kept subsequence of its input, so walking both in step finds each message's
/// verdict (two identical messages are interchangeable, so which of them matched does not matter).
fn align_verdicts(batch: &[Message], out: &[Message]) -> Result<Vec<Verdict>, Error> {
    let mut verdicts = Vec::with_capacity(batch.len());
    let mut next = out.iter().peekable();
    for m in batch {
        match next.peek() {
            Some(o) if o.payload == m.payload && o.metadata == m.metadata => {
                verdicts.push(match &o.error {
                    None => Ok(true),
                    Some(e) => Err(e.clone()),
                });
                next.next();
            }
            _ => verdicts.push(Ok(false)),
        }
    }
    if next.next().is_some() {
        return Err(Error::Internal(
            "VRL condition: the filter component answered messages it was not given".into(),
        ));
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &str) -> Message {
        crate::message(payload.as_bytes().to_vec(), Default::default())
    }

    #[test]
    fn verdicts_follow_the_filters_answer() {
        let batch = [msg("a"), msg("b"), msg("a"), msg("c")];
        let mut failed = msg("c");
        failed.error = Some("filter failed: boom".into());
        let out = [msg("b"), msg("a"), failed];
        let v = align_verdicts(&batch, &out).unwrap();
        assert_eq!(
            v,
            vec![
                Ok(false),
                Ok(true),
                Ok(true),
                Err("filter failed: boom".to_string())
            ]
        );
        assert!(align_verdicts(&batch[..1], &[msg("z")]).is_err());
    }
}
