//! The VRL functions a program may call in the sandbox, and the ones it refuses at compile time with a reason.
//!
//! Every function of VRL's `stdlib-base`, crypto and system groups is registered, with three changes:
//!
//! * Functions that need what the sandbox withholds (the host's environment, its name, its files, DNS, HTTP) are
//!   [`REFUSED`]: calling one is a compile error that says why and what to use instead, never a runtime surprise.
//!   Arguments that name a file on the host's disk (`parse_etld`'s `psl`, `parse_groks`' `alias_sources`) are
//!   refused the same way ([`WITHHELD_ARGUMENTS`]).
//! * In the guest (`wasm32`), where VRL's own builds of `log`, `parse_grok` and `parse_groks` only abort, the
//!   [`crate::sandboxed`] ones stand in: `log` writes to the host's log through the contract's log interface,
//!   and the grok parsers use the `grok` crate on a pure-Rust regex engine instead of Oniguruma (C).
//! * Compiled natively (the guests' unit tests, the benchmarks), VRL's own functions run unchanged.

use vrl::compiler::function::{ArgumentList, Compiled, Example, FunctionCompileContext};
use vrl::compiler::state::TypeState;
use vrl::compiler::{Function, Parameter};
use vrl::diagnostic::{DiagnosticMessage, Label, Span};

/// A function the sandbox refuses, and why.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// The function's name.
    pub name: &'static str,
    /// Why it cannot run in a processor, and what to use instead.
    pub reason: &'static str,
}

const NO_FILES: &str = "processors cannot read files on the host";

/// The functions a program may not call in the sandbox, with the reason given at compile time.
pub const REFUSED: &[Refusal] = &[
    Refusal {
        name: "get_env_var",
        reason: "processors cannot read the environment of the host they run on; write `${VAR}` in the \
                 stream's config, where the host interpolates it when the config is loaded, or keep the value in \
                 a secret",
    },
    Refusal {
        name: "get_hostname",
        reason: "processors cannot see the name of the host they run on; write `${HOSTNAME}` in the stream's \
                 config, where the host interpolates it when the config is loaded",
    },
    Refusal {
        name: "dns_lookup",
        reason: "processors have no network access, and so no resolver",
    },
    Refusal {
        name: "reverse_dns",
        reason: "processors have no network access, and so no resolver",
    },
    Refusal {
        name: "http_request",
        reason: "processors have no network access; send messages to an HTTP service with the `http_client` \
                 output",
    },
    Refusal {
        name: "validate_json_schema",
        reason: "it reads its schema from a file on the host, and processors cannot read files on the host; use \
                 the `validate` processor, which takes the JSON Schema in its config",
    },
    Refusal {
        name: "parse_proto",
        reason: "it reads a Protobuf descriptor from a file on the host, and processors cannot read files on the \
                 host",
    },
    Refusal {
        name: "encode_proto",
        reason: "it reads a Protobuf descriptor from a file on the host, and processors cannot read files on the \
                 host",
    },
];

/// Arguments refused because they name a file on the host's disk: (function, argument).
pub const WITHHELD_ARGUMENTS: &[(&str, &str)] =
    &[("parse_etld", "psl"), ("parse_groks", "alias_sources")];

/// The reason a refused function gives, if `name` is one.
pub fn refusal(name: &str) -> Option<&'static Refusal> {
    REFUSED.iter().find(|r| r.name == name)
}

/// The VRL functions a program may call (and, under their names, the refusals of [`REFUSED`]).
pub fn functions() -> Vec<Box<dyn Function>> {
    let mut fns: Vec<Box<dyn Function>> = Vec::with_capacity(200);
    for f in vrl::stdlib::all() {
        let name = f.identifier();
        if refusal(name).is_some() || crate::sandboxed::replaces(name) {
            continue;
        }
        match WITHHELD_ARGUMENTS
            .iter()
            .find(|(function, _)| *function == name)
        {
            Some(&(_, argument)) => fns.push(Box::new(Withheld { inner: f, argument })),
            None => fns.push(f),
        }
    }
    for f in crate::sandboxed::functions() {
        match WITHHELD_ARGUMENTS
            .iter()
            .find(|(function, _)| *function == f.identifier())
        {
            Some(&(_, argument)) => fns.push(Box::new(Withheld { inner: f, argument })),
            None => fns.push(f),
        }
    }
    fns.extend(
        REFUSED
            .iter()
            .map(|r| Box::new(Refused(r)) as Box<dyn Function>),
    );
    fns
}

/// The names of the functions a program may call, sorted (refused ones left out).
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = functions()
        .iter()
        .map(|f| f.identifier())
        .filter(|name| refusal(name).is_none())
        .collect();
    names.sort_unstable();
    names
}

/// A refused function: its call is a compile error with the reason. It takes any of the real function's
/// arguments, so the error is about the function and not about its arguments.
#[derive(Debug)]
struct Refused(&'static Refusal);

impl Function for Refused {
    fn identifier(&self) -> &'static str {
        self.0.name
    }

    fn usage(&self) -> &'static str {
        self.0.reason
    }

    fn category(&self) -> &'static str {
        "System"
    }

    fn return_kind(&self) -> u16 {
        vrl::compiler::value::kind::ANY
    }

    fn examples(&self) -> &'static [Example] {
        &[]
    }

    fn parameters(&self) -> &'static [Parameter] {
        refused_parameters(self.0.name)
    }

    fn compile(
        &self,
        _state: &TypeState,
        ctx: &mut FunctionCompileContext,
        _arguments: ArgumentList,
    ) -> Compiled {
        Err(Box::new(NotInSandbox {
            what: format!("`{}`", self.0.name),
            reason: self.0.reason,
            span: ctx.span(),
        }))
    }
}

/// The parameters of the refused functions, as VRL declares them (the network group is not built here).
fn refused_parameters(name: &str) -> &'static [Parameter] {
    use vrl::compiler::value::kind::{ANY, ARRAY, BYTES, OBJECT};
    const VALUE: &[Parameter] = &[Parameter::required("value", ANY, "")];
    const NAME: &[Parameter] = &[Parameter::required("name", BYTES, "")];
    const NONE: &[Parameter] = &[];
    const DNS: &[Parameter] = &[
        Parameter::required("value", BYTES, ""),
        Parameter::optional("qtype", BYTES, ""),
        Parameter::optional("class", BYTES, ""),
        Parameter::optional("options", OBJECT, ""),
    ];
    const HTTP: &[Parameter] = &[
        Parameter::required("url", BYTES, ""),
        Parameter::optional("method", BYTES, ""),
        Parameter::optional("headers", OBJECT, ""),
        Parameter::optional("body", BYTES, ""),
        Parameter::optional("http_proxy", BYTES, ""),
        Parameter::optional("https_proxy", BYTES, ""),
        Parameter::optional("redact_headers", ARRAY, ""),
    ];
    const SCHEMA: &[Parameter] = &[
        Parameter::required("value", ANY, ""),
        Parameter::required("schema_definition", BYTES, ""),
        Parameter::optional("ignore_unknown_formats", ANY, ""),
    ];
    const PROTO: &[Parameter] = &[
        Parameter::required("value", ANY, ""),
        Parameter::required("desc_file", BYTES, ""),
        Parameter::required("message_type", BYTES, ""),
    ];
    match name {
        "get_env_var" => NAME,
        "get_hostname" => NONE,
        "dns_lookup" => DNS,
        "reverse_dns" => VALUE,
        "http_request" => HTTP,
        "validate_json_schema" => SCHEMA,
        "parse_proto" | "encode_proto" => PROTO,
        _ => VALUE,
    }
}

/// A function one of whose arguments names a file on the host: given that argument, the call is refused.
#[derive(Debug)]
struct Withheld {
    inner: Box<dyn Function>,
    argument: &'static str,
}

impl Function for Withheld {
    fn identifier(&self) -> &'static str {
        self.inner.identifier()
    }
    fn summary(&self) -> &'static str {
        self.inner.summary()
    }
    fn usage(&self) -> &'static str {
        self.inner.usage()
    }
    fn category(&self) -> &'static str {
        self.inner.category()
    }
    fn internal_failure_reasons(&self) -> &'static [&'static str] {
        self.inner.internal_failure_reasons()
    }
    fn return_kind(&self) -> u16 {
        self.inner.return_kind()
    }
    fn return_rules(&self) -> &'static [&'static str] {
        self.inner.return_rules()
    }
    fn notices(&self) -> &'static [&'static str] {
        self.inner.notices()
    }
    fn pure(&self) -> bool {
        self.inner.pure()
    }
    fn examples(&self) -> &'static [Example] {
        self.inner.examples()
    }
    fn parameters(&self) -> &'static [Parameter] {
        self.inner.parameters()
    }
    fn closure(&self) -> Option<vrl::compiler::function::closure::Definition> {
        self.inner.closure()
    }

    fn compile(
        &self,
        state: &TypeState,
        ctx: &mut FunctionCompileContext,
        arguments: ArgumentList,
    ) -> Compiled {
        if arguments.optional(self.argument).is_some() {
            return Err(Box::new(NotInSandbox {
                what: format!("`{}` with `{}`", self.identifier(), self.argument),
                reason: NO_FILES,
                span: ctx.span(),
            }));
        }
        self.inner.compile(state, ctx, arguments)
    }
}

/// The compile error of a refused call.
#[derive(Debug)]
struct NotInSandbox {
    what: String,
    reason: &'static str,
    span: Span,
}

impl std::fmt::Display for NotInSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not available in the sandbox", self.what)
    }
}

impl std::error::Error for NotInSandbox {}

impl DiagnosticMessage for NotInSandbox {
    fn code(&self) -> usize {
        vrl::compiler::codes::ExprCode::UndefinedFunction as usize
    }

    fn labels(&self) -> Vec<Label> {
        vec![Label::primary(self.reason, self.span)]
    }
}
