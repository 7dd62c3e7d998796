//! The VRL service: compiles a VRL program in the sandbox (the built-in `mapping` component) for any kind that
//! takes one (`sql_insert`'s `args_mapping`), so no kind builds another kind by name. Validation compiles the
//! program once to report its diagnostics; the running component instantiates it and runs batches through it.

use std::sync::Arc;

use airtruct_engine::{Engine, InitError, Limits, LoadedComponent, ProcessorInstance};

use crate::{Error, Message};

/// Compiles VRL programs with one engine.
#[derive(Clone)]
pub struct Vrl {
    engine: Engine,
}

/// A VRL program that compiled, ready to instantiate.
#[derive(Clone)]
pub struct VrlProgram {
    engine: Engine,
    component: Arc<LoadedComponent>,
    /// The `mapping` component's configuration.
    config: String,
}

impl std::fmt::Debug for VrlProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrlProgram")
            .field("config", &self.config)
            .finish()
    }
}

impl Vrl {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// A program whose value (its last expression: `[.id, .name]`) becomes each message's payload, as JSON.
    /// `Err` carries VRL's diagnostics.
    pub fn value_program(&self, source: &str) -> Result<VrlProgram, String> {
        // The mapping component's result is `.`: the program's value is assigned to it.
        let wrapped = format!(". = if true {{\n{source}\n}}");
        let builtin = airtruct_builtins::builtin("mapping")
            .ok_or_else(|| "the built-in mapping component is missing".to_string())?;
        let component = crate::processors::load_builtin(&self.engine, builtin)
            .map_err(|e| format!("loading the VRL component: {e}"))?;
        let program = VrlProgram {
            engine: self.engine.clone(),
            component,
            config: serde_json::Value::String(wrapped).to_string(),
        };
        // Compiling is `init`: an instance made now says whether the program is valid.
        program.instance().map_err(|e| match e {
            InitError::Config(errors) => errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
            InitError::Call(e) => e.to_string(),
        })?;
        Ok(program)
    }
}

impl VrlProgram {
    fn instance(&self) -> Result<ProcessorInstance, InitError> {
        self.engine
            .instantiate(&self.component, &self.config, Limits::default())
    }

    /// A running instance of the program.
    pub fn runner(&self) -> Result<VrlRunner, Error> {
        let instance = self
            .instance()
            .map_err(|e| Error::User(format!("VRL program: {e}")))?;
        Ok(VrlRunner {
            instance: Some(instance),
            program: self.clone(),
        })
    }
}

/// An instance of a program that runs batches off the async reactor.
pub struct VrlRunner {
    instance: Option<ProcessorInstance>,
    program: VrlProgram,
}

impl VrlRunner {
    /// Runs the program on each message; the result has one message per input (with `error` set where the
    /// program failed), or `Err` when the whole call failed.
    pub async fn run(&mut self, batch: &[Message]) -> Result<Vec<Message>, Error> {
        let mut instance = match self.instance.take() {
            Some(i) => i,
            None => self
                .program
                .instance()
                .map_err(|e| Error::User(format!("VRL program: {e}")))?,
        };
        let input = batch.to_vec();
        let (instance, out) = tokio::task::spawn_blocking(move || {
            let out = instance.process(&input);
            (instance, out)
        })
        .await
        .map_err(|e| Error::Internal(format!("VRL program: {e}")))?;
        self.instance = Some(instance);
        let out = out.map_err(|e| Error::User(format!("VRL program: {e}")))?;
        if out.len() != batch.len() {
            return Err(Error::User(format!(
                "VRL program gave {} results for {} messages: it must not filter or split",
                out.len(),
                batch.len()
            )));
        }
        Ok(out)
    }
}
