//! The functions that stand in for VRL's own inside the guest, where VRL builds them only to abort ("not
//! supported in WebAssembly"): `log` through the contract's log interface, and `parse_grok` and `parse_groks`
//! on the `grok` crate with a pure-Rust regex engine (VRL uses Oniguruma, which is C). Compiled natively, this
//! module is empty and VRL's own functions run.

use vrl::compiler::Function;

/// Whether a function of this name is replaced here (in the guest).
pub fn replaces(name: &str) -> bool {
    cfg!(target_family = "wasm") && matches!(name, "log" | "parse_grok" | "parse_groks")
}

/// The replacements (none natively).
pub fn functions() -> Vec<Box<dyn Function>> {
    #[cfg(target_family = "wasm")]
    {
        vec![
            Box::new(wasm::Log),
            Box::new(wasm::ParseGrok),
            Box::new(wasm::ParseGroks),
        ]
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Vec::new()
    }
}

#[cfg(target_family = "wasm")]
mod wasm {
    use std::sync::Arc;

    use vrl::compiler::function::closure;
    use vrl::compiler::prelude::*;
    use vrl::diagnostic::Label;

    /// `log(value, level, rate_limit_secs)`: a record in the host's log, tagged with the stream and processor.
    /// The host limits how many records a processor writes a second (the sandbox's clocks are frozen, so
    /// `rate_limit_secs` is checked but the host's limit applies).
    #[derive(Clone, Copy, Debug)]
    pub struct Log;

    impl Function for Log {
        fn identifier(&self) -> &'static str {
            "log"
        }
        fn usage(&self) -> &'static str {
            vrl::stdlib::Log.usage()
        }
        fn category(&self) -> &'static str {
            vrl::stdlib::Log.category()
        }
        fn return_kind(&self) -> u16 {
            kind::NULL
        }
        fn pure(&self) -> bool {
            false
        }
        fn parameters(&self) -> &'static [Parameter] {
            vrl::stdlib::Log.parameters()
        }
        fn examples(&self) -> &'static [Example] {
            vrl::stdlib::Log.examples()
        }

        fn compile(
            &self,
            state: &TypeState,
            _ctx: &mut FunctionCompileContext,
            arguments: ArgumentList,
        ) -> Compiled {
            let levels: Vec<Value> = ["trace", "debug", "info", "warn", "error"]
                .into_iter()
                .map(Value::from)
                .collect();
            let value = arguments.required("value");
            let level = arguments
                .optional_enum("level", &levels, state)?
                .and_then(|v| v.try_bytes().ok())
                .unwrap_or_else(|| "info".into());
            let rate_limit_secs = arguments.optional("rate_limit_secs");
            Ok(LogFn {
                value,
                level,
                rate_limit_secs,
            }
            .as_expr())
        }
    }

    #[derive(Debug, Clone)]
    struct LogFn {
        value: Box<dyn Expression>,
        level: Bytes,
        rate_limit_secs: Option<Box<dyn Expression>>,
    }

    impl FunctionExpression for LogFn {
        fn resolve(&self, ctx: &mut Context) -> Resolved {
            let value = self.value.resolve(ctx)?;
            if let Some(secs) = &self.rate_limit_secs {
                secs.resolve(ctx)?.try_integer()?;
            }
            let level = match self.level.as_ref() {
                b"trace" => airtruct_sdk::Level::Trace,
                b"debug" => airtruct_sdk::Level::Debug,
                b"warn" => airtruct_sdk::Level::Warn,
                b"error" => airtruct_sdk::Level::Error,
                _ => airtruct_sdk::Level::Info,
            };
            airtruct_sdk::log(level, &value.to_string_lossy());
            Ok(Value::Null)
        }

        fn type_def(&self, _: &TypeState) -> TypeDef {
            TypeDef::null().infallible().impure()
        }
    }

    /// A grok pattern that does not compile.
    #[derive(Debug)]
    struct InvalidPattern(String);

    impl std::fmt::Display for InvalidPattern {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for InvalidPattern {}

    impl DiagnosticMessage for InvalidPattern {
        fn code(&self) -> usize {
            vrl::compiler::codes::ExprCode::InvalidGrokPattern as usize
        }
        fn labels(&self) -> Vec<Label> {
            vec![Label::primary(
                format!("grok pattern error: {}", self.0),
                Span::default(),
            )]
        }
    }

    fn invalid(e: grok::Error) -> Box<dyn DiagnosticMessage> {
        Box::new(InvalidPattern(e.to_string()))
    }

    /// `parse_grok(value, pattern)`, as VRL's.
    #[derive(Clone, Copy, Debug)]
    pub struct ParseGrok;

    impl Function for ParseGrok {
        fn identifier(&self) -> &'static str {
            "parse_grok"
        }
        fn usage(&self) -> &'static str {
            vrl::stdlib::ParseGrok.usage()
        }
        fn category(&self) -> &'static str {
            vrl::stdlib::ParseGrok.category()
        }
        fn internal_failure_reasons(&self) -> &'static [&'static str] {
            vrl::stdlib::ParseGrok.internal_failure_reasons()
        }
        fn return_kind(&self) -> u16 {
            kind::OBJECT
        }
        fn parameters(&self) -> &'static [Parameter] {
            vrl::stdlib::ParseGrok.parameters()
        }
        fn examples(&self) -> &'static [Example] {
            vrl::stdlib::ParseGrok.examples()
        }

        fn compile(
            &self,
            state: &TypeState,
            _ctx: &mut FunctionCompileContext,
            arguments: ArgumentList,
        ) -> Compiled {
            let value = arguments.required("value");
            let pattern = arguments
                .required_literal("pattern", state)?
                .try_bytes_utf8_lossy()
                .map_err(|_| {
                    Box::new(InvalidPattern("the grok pattern is not a string".into()))
                        as Box<dyn DiagnosticMessage>
                })?
                .into_owned();
            let pattern = grok::Grok::with_default_patterns()
                .compile(&pattern, true)
                .map_err(invalid)?;
            Ok(ParseGrokFn {
                value,
                pattern: Arc::new(pattern),
            }
            .as_expr())
        }
    }

    #[derive(Clone, Debug)]
    struct ParseGrokFn {
        value: Box<dyn Expression>,
        pattern: Arc<grok::Pattern>,
    }

    impl FunctionExpression for ParseGrokFn {
        fn resolve(&self, ctx: &mut Context) -> Resolved {
            let value = self.value.resolve(ctx)?;
            let text = value.try_bytes_utf8_lossy()?;
            match self.pattern.match_against(&text) {
                Some(matches) => Ok(Value::from(
                    matches
                        .iter()
                        .map(|(name, value)| (KeyString::from(name), Value::from(value)))
                        .collect::<ObjectMap>(),
                )),
                None => Err("unable to parse input with grok pattern".into()),
            }
        }

        fn type_def(&self, _: &TypeState) -> TypeDef {
            TypeDef::object(Collection::any()).fallible()
        }
    }

    /// `parse_groks(value, patterns, aliases)`: the first of `patterns` that matches, with `aliases` as extra
    /// named patterns. Like VRL's, empty captures are left out, a dotted name (`user.name`) nests, and a name
    /// captured twice gives an array. Datadog's own matchers and filters (`%{data:x:json}`) are not supported:
    /// a pattern that uses one does not compile.
    #[derive(Clone, Copy, Debug)]
    pub struct ParseGroks;

    impl Function for ParseGroks {
        fn identifier(&self) -> &'static str {
            "parse_groks"
        }
        fn usage(&self) -> &'static str {
            vrl::stdlib::ParseGroks.usage()
        }
        fn category(&self) -> &'static str {
            vrl::stdlib::ParseGroks.category()
        }
        fn internal_failure_reasons(&self) -> &'static [&'static str] {
            vrl::stdlib::ParseGroks.internal_failure_reasons()
        }
        fn return_kind(&self) -> u16 {
            kind::OBJECT
        }
        fn parameters(&self) -> &'static [Parameter] {
            vrl::stdlib::ParseGroks.parameters()
        }
        fn examples(&self) -> &'static [Example] {
            vrl::stdlib::ParseGroks.examples()
        }
        fn closure(&self) -> Option<closure::Definition> {
            None
        }

        fn compile(
            &self,
            state: &TypeState,
            _ctx: &mut FunctionCompileContext,
            arguments: ArgumentList,
        ) -> Compiled {
            let value = arguments.required("value");
            let constant = |keyword: &'static str, expr: &expression::Expr| {
                expr.clone()
                    .resolve_constant(state)
                    .and_then(|v| v.try_bytes_utf8_lossy().ok().map(|s| s.into_owned()))
                    .ok_or_else(|| {
                        Box::new(InvalidPattern(format!(
                            "`{keyword}` must be literal strings"
                        ))) as Box<dyn DiagnosticMessage>
                    })
            };
            let mut grok = grok::Grok::with_default_patterns();
            for (name, expr) in arguments.optional_object("aliases")?.unwrap_or_default() {
                grok.add_pattern(name.as_str().to_owned(), constant("aliases", &expr)?);
            }
            let mut patterns = Vec::new();
            for expr in arguments.required_array("patterns")? {
                let pattern = constant("patterns", &expr)?;
                patterns.push(grok.compile(&pattern, true).map_err(invalid)?);
            }
            Ok(ParseGroksFn {
                value,
                patterns: Arc::new(patterns),
            }
            .as_expr())
        }
    }

    #[derive(Clone, Debug)]
    struct ParseGroksFn {
        value: Box<dyn Expression>,
        patterns: Arc<Vec<grok::Pattern>>,
    }

    impl FunctionExpression for ParseGroksFn {
        fn resolve(&self, ctx: &mut Context) -> Resolved {
            let value = self.value.resolve(ctx)?;
            let text = value.try_bytes_utf8_lossy()?;
            for pattern in self.patterns.iter() {
                if let Some(matches) = pattern.match_against(&text) {
                    let mut parsed = ObjectMap::new();
                    for (name, value) in matches.iter() {
                        if !value.is_empty() {
                            insert(&mut parsed, name, Value::from(value));
                        }
                    }
                    return Ok(Value::Object(parsed));
                }
            }
            Err("unable to parse grok: value does not match any rule".into())
        }

        fn type_def(&self, _: &TypeState) -> TypeDef {
            TypeDef::object(Collection::any()).fallible()
        }
    }

    /// Inserts at a dotted path; a second value at the same path makes an array.
    fn insert(map: &mut ObjectMap, path: &str, value: Value) {
        match path.split_once('.') {
            Some((head, rest)) => {
                let entry = map
                    .entry(KeyString::from(head))
                    .or_insert_with(|| Value::Object(ObjectMap::new()));
                if let Value::Object(inner) = entry {
                    insert(inner, rest, value);
                }
            }
            None => match map.remove(path) {
                Some(Value::Array(mut values)) => {
                    values.push(value);
                    map.insert(KeyString::from(path), Value::Array(values));
                }
                Some(existing) => {
                    map.insert(KeyString::from(path), Value::Array(vec![existing, value]));
                }
                None => {
                    map.insert(KeyString::from(path), value);
                }
            },
        }
    }
}
