//! Filter conditions: compiling one as the `filter` processor runs it, and reading its result.

use vrl::compiler::Program;
use vrl::value::Value;

use crate::RunError;

/// VRL's code for "unhandled error" (a fallible expression whose error is not handled).
const UNHANDLED_ERROR: usize = 100;
/// The key of the object a wrapped condition returns when it failed at runtime.
const ERROR_KEY: &str = "__airtruct_filter_error";

/// Wraps a fallible condition so that its runtime error is caught and returned as `{ERROR_KEY: message}`.
fn wrap(condition: &str) -> String {
    format!(
        "airtruct_filter_value, airtruct_filter_error = {{\n{condition}\n}}\n\
         if airtruct_filter_error == null {{ airtruct_filter_value }} else {{ {{ \"{ERROR_KEY}\": airtruct_filter_error }} }}"
    )
}

/// Compiles a condition as the filter runs it; the error is VRL's formatted diagnostics.
///
/// A condition that VRL rejects only because it can fail at runtime (`error[E100]: unhandled error`, as in
/// `.qty > 0` where `.qty` might not be a number) is accepted: it is wrapped so that the error is caught, and the
/// program returns `{ERROR_KEY: message}` on a message where it fails.
pub fn compile_condition(condition: &str) -> Result<Program, String> {
    let program = match crate::compile_diagnostics(condition, true) {
        Ok(program) => program,
        Err(diagnostics) => {
            let errors = diagnostics.errors();
            let only_unhandled =
                !errors.is_empty() && errors.iter().all(|d| d.code == UNHANDLED_ERROR);
            match only_unhandled.then(|| crate::compile_diagnostics(&wrap(condition), true)) {
                Some(Ok(program)) => program,
                _ => return Err(crate::format_diagnostics(condition, diagnostics)),
            }
        }
    };
    let kind = program.final_type_info().result.kind().clone();
    if !kind.contains_boolean() {
        return Err(format!(
            "the condition must return a boolean, but it returns {kind}"
        ));
    }
    Ok(program)
}

/// A condition's result read as the filter does: `Ok(true)` keeps the message, `Ok(false)` drops it, and the
/// error (a runtime error, `abort`, a result that is not a boolean) fails it.
pub fn condition_result(result: Result<Value, RunError>) -> Result<bool, String> {
    match result {
        Ok(Value::Boolean(b)) => Ok(b),
        Ok(Value::Object(o)) if o.len() == 1 && o.contains_key(ERROR_KEY) => {
            let error = o
                .get(ERROR_KEY)
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            Err(format!("filter failed: {error}"))
        }
        Ok(Value::Null) => Err("filter condition must return a boolean, got null".to_string()),
        Ok(other) => Err(format!(
            "filter condition must return a boolean, got {} {}",
            crate::type_name(&other),
            crate::short_display(&other)
        )),
        Err(RunError::Abort(m)) if m == "aborted" => Err("filter aborted".to_string()),
        Err(RunError::Abort(m)) => Err(format!("filter aborted: {m}")),
        Err(RunError::Error(m)) => Err(format!("filter failed: {m}")),
    }
}

/// A mapping's runtime error as the message's error: `abort` without a message reads "mapping aborted".
pub fn mapping_error(error: RunError) -> String {
    match error {
        RunError::Abort(m) if m == "aborted" => "mapping aborted".to_string(),
        RunError::Abort(m) => format!("mapping aborted: {m}"),
        RunError::Error(m) => format!("mapping failed: {m}"),
    }
}
